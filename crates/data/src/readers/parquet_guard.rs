//! Checks of a Parquet file's Thrift structures — the footer (`FileMetaData`) and the page
//! headers of each column chunk read — before the parquet crate decodes them.
//!
//! parquet 60.1 trusts the counts in these structures: it skips a list of booleans one loop
//! turn per declared element without reading a byte, "skips" fixed-size elements past the end
//! of the file without failing, sizes a dictionary from its page header before decoding it,
//! converts the schema recursively and inflates a GZIP page whole before checking its size
//! (docs/reliability.md, Fuzzing, findings 3-8). The walker here visits every value of a
//! structure in the Thrift compact protocol, checking each declared count and length against
//! the bytes left, so a structure it accepts costs the decoder work in proportion to its
//! bytes; the footer check bounds the schema's depth, and the page checks hold the sizes a
//! header declares against its column chunk and the memory cap.
//!
//! The walker knows the fields parquet 60.1 reads of every Parquet struct and refuses a field
//! whose wire type differs from the one the decoder will assume: the decoder reads a known
//! field by its id, whatever its wire type says, so a mismatch would make it read bytes the
//! walker skipped (e.g. a binary's content) as a struct.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::{DataError, Result};

/// Compact protocol type codes (spec: thrift/doc/specs/thrift-compact-protocol.md). Fields and
/// list elements share them, except that a boolean field's value is its type (1 true, 2
/// false) while a boolean element is one byte of its own, typed 2 (or 1, which writers use
/// too and parquet 60.1 accepts).
mod code {
    pub const STOP: u8 = 0;
    pub const TRUE: u8 = 1;
    pub const FALSE: u8 = 2;
    pub const BYTE: u8 = 3;
    pub const I16: u8 = 4;
    pub const I32: u8 = 5;
    pub const I64: u8 = 6;
    pub const DOUBLE: u8 = 7;
    pub const BINARY: u8 = 8;
    pub const LIST: u8 = 9;
    pub const SET: u8 = 10;
    pub const MAP: u8 = 11;
    pub const STRUCT: u8 = 12;
    pub const UUID: u8 = 13;
}

/// Most nested structs, lists, sets and maps the walker follows (parquet 60.1's skip stops
/// at the same depth; real footers nest about 8 deep).
const MAX_DEPTH: usize = 64;

/// Longest varint: 10 bytes hold 64 bits.
const MAX_VARINT: usize = 10;

/// Deepest schema tree (groups within groups) accepted: parquet 60.1 converts the schema
/// recursively, one stack frame chain per level, so a footer of nested groups could
/// otherwise overflow the stack. Real schemas nest a few levels.
const MAX_SCHEMA_DEPTH: usize = 128;

/// First read for a page header; most are under 100 bytes, so one read usually holds it
/// (and the next headers too when pages are small).
const HEADER_READ: usize = 4 << 10;

/// Largest page header accepted. Page statistics are the only large part, and the reader
/// only reads numeric columns (statistics of at most 8 bytes per value).
const MAX_PAGE_HEADER: usize = 64 << 10;

/// Why the walker refused a structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Problem {
    /// The bytes end in the middle of a value.
    #[error("the bytes end in the middle of a value")]
    Truncated,
    /// A varint has more than [`MAX_VARINT`] bytes or more than 64 bits.
    #[error("a varint longer than 64 bits")]
    LongVarint,
    /// A type code the protocol does not define.
    #[error("unknown type code {0}")]
    BadType(u8),
    /// A stop byte (type 0) with a field-id delta.
    #[error("byte {0:#04x} is neither a field header nor a stop")]
    BadStop(u8),
    /// A field id out of the 16-bit range (long form, or the delta overflowing).
    #[error("field id {0} is out of range")]
    BadFieldId(i64),
    /// A collection declares more elements than the bytes left can hold.
    #[error(
        "a {kind} of {count} elements of at least {min} byte(s) each, more than the {left} \
         bytes left"
    )]
    TooMany {
        kind: &'static str,
        count: u64,
        min: u64,
        left: usize,
    },
    /// A binary declares more bytes than are left.
    #[error("a binary of {len} bytes, more than the {left} bytes left")]
    TooLong { len: u64, left: usize },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("values nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A non-empty collection of booleans: parquet 60.1 skips such elements without reading
    /// their byte (finding 4), so it would read what follows differently from this walk; no
    /// Parquet footer or page header has one.
    #[error("a {kind} of {count} booleans (none belongs in a Parquet footer or page header)")]
    Booleans { kind: &'static str, count: u64 },
    /// A known field with a wire type other than the one the decoder reads it as.
    #[error("field {id} of {owner} is typed {found}, expected {expected}")]
    WrongType {
        owner: &'static str,
        id: i16,
        found: &'static str,
        expected: &'static str,
    },
    /// A list of a known field whose elements have another type than the decoder reads.
    #[error("field {id} of {owner} is a list of {found}, expected a list of {expected}")]
    WrongElement {
        owner: &'static str,
        id: i16,
        found: &'static str,
        expected: &'static str,
    },
    /// A value an [`Observer`] refused.
    #[error("{0}")]
    Refused(String),
}

impl Problem {
    /// Whether more bytes could have made the value fit (the walked bytes may be a window).
    fn wants_bytes(&self) -> bool {
        matches!(
            self,
            Problem::Truncated | Problem::TooMany { .. } | Problem::TooLong { .. }
        )
    }
}

/// A refused structure: what is wrong, at which byte (counted from the structure's start).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("byte {at}: {problem}")]
struct ThriftError {
    /// Offset of the value at fault within the walked bytes.
    at: usize,
    /// What is wrong with it.
    problem: Problem,
}

/// The type the decoder reads a known field as.
#[derive(Clone, Copy)]
enum Ty {
    Bool,
    I8,
    I16,
    I32,
    I64,
    Double,
    Binary,
    List(&'static Ty),
    Struct(&'static Def),
}

impl Ty {
    /// Whether wire type `t` (a field's or a list element's) encodes this type.
    fn accepts(self, t: u8) -> bool {
        match self {
            Ty::Bool => t == code::TRUE || t == code::FALSE,
            Ty::I8 => t == code::BYTE,
            Ty::I16 => t == code::I16,
            Ty::I32 => t == code::I32,
            Ty::I64 => t == code::I64,
            Ty::Double => t == code::DOUBLE,
            Ty::Binary => t == code::BINARY,
            Ty::List(_) => t == code::LIST,
            Ty::Struct(_) => t == code::STRUCT,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Ty::Bool => "bool",
            Ty::I8 => "i8",
            Ty::I16 => "i16",
            Ty::I32 => "i32",
            Ty::I64 => "i64",
            Ty::Double => "double",
            Ty::Binary => "binary",
            Ty::List(_) => "list",
            Ty::Struct(d) => d.name,
        }
    }
}

/// Name of a wire type code, for errors.
fn code_name(t: u8) -> &'static str {
    match t {
        code::TRUE | code::FALSE => "bool",
        code::BYTE => "i8",
        code::I16 => "i16",
        code::I32 => "i32",
        code::I64 => "i64",
        code::DOUBLE => "double",
        code::BINARY => "binary",
        code::LIST => "list",
        code::SET => "set",
        code::MAP => "map",
        code::STRUCT => "struct",
        code::UUID => "uuid",
        _ => "unknown",
    }
}

/// Fewest bytes an element of wire type `t` takes in a list, set or map.
fn min_size(t: u8) -> u64 {
    match t {
        code::DOUBLE => 8,
        code::UUID => 16,
        // Every other value takes at least one byte: a varint, a length, a list or map
        // header, a struct's stop byte, a boolean element's byte.
        _ => 1,
    }
}

/// A Thrift struct the decoder reads: its name (for errors) and its known fields.
struct Def {
    /// The struct's name in parquet.thrift.
    name: &'static str,
    fields: &'static [(i16, Ty)],
}

impl Def {
    fn field(&self, id: i16) -> Option<Ty> {
        self.fields.iter().find(|(i, _)| *i == id).map(|&(_, t)| t)
    }
}

/// Receives the integer fields of known structs as the walker passes them, and may refuse
/// a value.
trait Observer {
    /// An integer field (i8, i16, i32, i64) `id` of the struct named `owner`.
    fn int(
        &mut self,
        _owner: &'static str,
        _id: i16,
        _value: i64,
    ) -> std::result::Result<(), Problem> {
        Ok(())
    }
    /// The end of a known struct named `owner`.
    fn end(&mut self, _owner: &'static str) -> std::result::Result<(), Problem> {
        Ok(())
    }
}

// The structs parquet 60.1 decodes from a footer and a page header (parquet.thrift, as the
// crate's file/metadata/thrift/mod.rs, basic.rs and metadata/mod.rs read them). Unions are
// walked as structs; their unit variants are empty structs. Enums are i32.
static EMPTY: Def = Def {
    name: "an empty struct",
    fields: &[],
};
static DECIMAL_TYPE: Def = Def {
    name: "DecimalType",
    fields: &[(1, Ty::I32), (2, Ty::I32)],
};
static TIME_UNIT: Def = Def {
    name: "TimeUnit",
    fields: &[
        (1, Ty::Struct(&EMPTY)),
        (2, Ty::Struct(&EMPTY)),
        (3, Ty::Struct(&EMPTY)),
    ],
};
static TIME_TYPE: Def = Def {
    name: "TimeType",
    fields: &[(1, Ty::Bool), (2, Ty::Struct(&TIME_UNIT))],
};
static INT_TYPE: Def = Def {
    name: "IntType",
    fields: &[(1, Ty::I8), (2, Ty::Bool)],
};
static VARIANT_TYPE: Def = Def {
    name: "VariantType",
    fields: &[(1, Ty::I8)],
};
static GEOMETRY_TYPE: Def = Def {
    name: "GeometryType",
    fields: &[(1, Ty::Binary)],
};
static GEOGRAPHY_TYPE: Def = Def {
    name: "GeographyType",
    fields: &[(1, Ty::Binary), (2, Ty::I32)],
};
static LOGICAL_TYPE: Def = Def {
    name: "LogicalType",
    fields: &[
        (1, Ty::Struct(&EMPTY)),
        (2, Ty::Struct(&EMPTY)),
        (3, Ty::Struct(&EMPTY)),
        (4, Ty::Struct(&EMPTY)),
        (5, Ty::Struct(&DECIMAL_TYPE)),
        (6, Ty::Struct(&EMPTY)),
        (7, Ty::Struct(&TIME_TYPE)),
        (8, Ty::Struct(&TIME_TYPE)),
        (10, Ty::Struct(&INT_TYPE)),
        (11, Ty::Struct(&EMPTY)),
        (12, Ty::Struct(&EMPTY)),
        (13, Ty::Struct(&EMPTY)),
        (14, Ty::Struct(&EMPTY)),
        (15, Ty::Struct(&EMPTY)),
        (16, Ty::Struct(&VARIANT_TYPE)),
        (17, Ty::Struct(&GEOMETRY_TYPE)),
        (18, Ty::Struct(&GEOGRAPHY_TYPE)),
        (19, Ty::Struct(&EMPTY)),
    ],
};
static SCHEMA_ELEMENT: Def = Def {
    name: "SchemaElement",
    fields: &[
        (1, Ty::I32),
        (2, Ty::I32),
        (3, Ty::I32),
        (4, Ty::Binary),
        (5, Ty::I32),
        (6, Ty::I32),
        (7, Ty::I32),
        (8, Ty::I32),
        (9, Ty::I32),
        (10, Ty::Struct(&LOGICAL_TYPE)),
    ],
};
static KEY_VALUE: Def = Def {
    name: "KeyValue",
    fields: &[(1, Ty::Binary), (2, Ty::Binary)],
};
static STATISTICS: Def = Def {
    name: "Statistics",
    fields: &[
        (1, Ty::Binary),
        (2, Ty::Binary),
        (3, Ty::I64),
        (4, Ty::I64),
        (5, Ty::Binary),
        (6, Ty::Binary),
        (7, Ty::Bool),
        (8, Ty::Bool),
        (9, Ty::I64),
    ],
};
static PAGE_ENCODING_STATS: Def = Def {
    name: "PageEncodingStats",
    fields: &[(1, Ty::I32), (2, Ty::I32), (3, Ty::I32)],
};
static SIZE_STATISTICS: Def = Def {
    name: "SizeStatistics",
    fields: &[
        (1, Ty::I64),
        (2, Ty::List(&Ty::I64)),
        (3, Ty::List(&Ty::I64)),
    ],
};
static BOUNDING_BOX: Def = Def {
    name: "BoundingBox",
    fields: &[
        (1, Ty::Double),
        (2, Ty::Double),
        (3, Ty::Double),
        (4, Ty::Double),
        (5, Ty::Double),
        (6, Ty::Double),
        (7, Ty::Double),
        (8, Ty::Double),
    ],
};
static GEOSPATIAL_STATISTICS: Def = Def {
    name: "GeospatialStatistics",
    fields: &[(1, Ty::Struct(&BOUNDING_BOX)), (2, Ty::List(&Ty::I32))],
};
static COLUMN_META_DATA: Def = Def {
    name: "ColumnMetaData",
    fields: &[
        (1, Ty::I32),
        (2, Ty::List(&Ty::I32)),
        (3, Ty::List(&Ty::Binary)),
        (4, Ty::I32),
        (5, Ty::I64),
        (6, Ty::I64),
        (7, Ty::I64),
        (8, Ty::List(&Ty::Struct(&KEY_VALUE))),
        (9, Ty::I64),
        (10, Ty::I64),
        (11, Ty::I64),
        (12, Ty::Struct(&STATISTICS)),
        (13, Ty::List(&Ty::Struct(&PAGE_ENCODING_STATS))),
        (14, Ty::I64),
        (15, Ty::I32),
        (16, Ty::Struct(&SIZE_STATISTICS)),
        (17, Ty::Struct(&GEOSPATIAL_STATISTICS)),
    ],
};
static ENCRYPTION_WITH_COLUMN_KEY: Def = Def {
    name: "EncryptionWithColumnKey",
    fields: &[(1, Ty::List(&Ty::Binary)), (2, Ty::Binary)],
};
static COLUMN_CRYPTO_META_DATA: Def = Def {
    name: "ColumnCryptoMetaData",
    fields: &[
        (1, Ty::Struct(&EMPTY)),
        (2, Ty::Struct(&ENCRYPTION_WITH_COLUMN_KEY)),
    ],
};
static COLUMN_CHUNK: Def = Def {
    name: "ColumnChunk",
    fields: &[
        (1, Ty::Binary),
        (2, Ty::I64),
        (3, Ty::Struct(&COLUMN_META_DATA)),
        (4, Ty::I64),
        (5, Ty::I32),
        (6, Ty::I64),
        (7, Ty::I32),
        (8, Ty::Struct(&COLUMN_CRYPTO_META_DATA)),
        (9, Ty::Binary),
    ],
};
static SORTING_COLUMN: Def = Def {
    name: "SortingColumn",
    fields: &[(1, Ty::I32), (2, Ty::Bool), (3, Ty::Bool)],
};
static ROW_GROUP: Def = Def {
    name: "RowGroup",
    fields: &[
        (1, Ty::List(&Ty::Struct(&COLUMN_CHUNK))),
        (2, Ty::I64),
        (3, Ty::I64),
        (4, Ty::List(&Ty::Struct(&SORTING_COLUMN))),
        (5, Ty::I64),
        (6, Ty::I64),
        (7, Ty::I16),
    ],
};
static COLUMN_ORDER: Def = Def {
    name: "ColumnOrder",
    fields: &[
        (1, Ty::Struct(&EMPTY)),
        (2, Ty::Struct(&EMPTY)),
        (3, Ty::Struct(&EMPTY)),
    ],
};
static AES_GCM: Def = Def {
    name: "AesGcmV1",
    fields: &[(1, Ty::Binary), (2, Ty::Binary), (3, Ty::Bool)],
};
static ENCRYPTION_ALGORITHM: Def = Def {
    name: "EncryptionAlgorithm",
    fields: &[(1, Ty::Struct(&AES_GCM)), (2, Ty::Struct(&AES_GCM))],
};
/// The footer's root struct.
static FILE_META_DATA: Def = Def {
    name: "FileMetaData",
    fields: &[
        (1, Ty::I32),
        (2, Ty::List(&Ty::Struct(&SCHEMA_ELEMENT))),
        (3, Ty::I64),
        (4, Ty::List(&Ty::Struct(&ROW_GROUP))),
        (5, Ty::List(&Ty::Struct(&KEY_VALUE))),
        (6, Ty::Binary),
        (7, Ty::List(&Ty::Struct(&COLUMN_ORDER))),
        (8, Ty::Struct(&ENCRYPTION_ALGORITHM)),
        (9, Ty::Binary),
    ],
};
static DATA_PAGE_HEADER: Def = Def {
    name: "DataPageHeader",
    fields: &[
        (1, Ty::I32),
        (2, Ty::I32),
        (3, Ty::I32),
        (4, Ty::I32),
        (5, Ty::Struct(&STATISTICS)),
    ],
};
static DICTIONARY_PAGE_HEADER: Def = Def {
    name: "DictionaryPageHeader",
    fields: &[(1, Ty::I32), (2, Ty::I32), (3, Ty::Bool)],
};
static DATA_PAGE_HEADER_V2: Def = Def {
    name: "DataPageHeaderV2",
    fields: &[
        (1, Ty::I32),
        (2, Ty::I32),
        (3, Ty::I32),
        (4, Ty::I32),
        (5, Ty::I32),
        (6, Ty::I32),
        (7, Ty::Bool),
        (8, Ty::Struct(&STATISTICS)),
    ],
};
/// A page header's root struct.
static PAGE_HEADER: Def = Def {
    name: "PageHeader",
    fields: &[
        (1, Ty::I32),
        (2, Ty::I32),
        (3, Ty::I32),
        (4, Ty::I32),
        (5, Ty::Struct(&DATA_PAGE_HEADER)),
        (6, Ty::Struct(&EMPTY)),
        (7, Ty::Struct(&DICTIONARY_PAGE_HEADER)),
        (8, Ty::Struct(&DATA_PAGE_HEADER_V2)),
    ],
};

/// Walks one struct of type `def` at the start of `buf` and returns how many bytes it takes
/// (bytes after it are not looked at).
///
/// Work is linear in the bytes walked: every value visited consumes at least one byte (a
/// boolean field its header's), each collection's count is checked against the bytes left
/// before its elements are visited, and recursion stops at [`MAX_DEPTH`].
fn walk(
    buf: &[u8],
    def: &'static Def,
    obs: &mut impl Observer,
) -> std::result::Result<usize, ThriftError> {
    let mut w = Walker { buf, pos: 0, obs };
    w.structure(Some(def), 1)?;
    Ok(w.pos)
}

type Walked<T> = std::result::Result<T, ThriftError>;

struct Walker<'b, 'o, O> {
    buf: &'b [u8],
    pos: usize,
    obs: &'o mut O,
}

impl<O: Observer> Walker<'_, '_, O> {
    fn fail<T>(&self, at: usize, problem: Problem) -> Walked<T> {
        Err(ThriftError { at, problem })
    }

    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn byte(&mut self) -> Walked<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => self.fail(self.pos, Problem::Truncated),
        }
    }

    fn skip(&mut self, n: u64) -> Walked<()> {
        match usize::try_from(n).ok().filter(|&n| n <= self.left()) {
            Some(n) => {
                self.pos += n;
                Ok(())
            }
            None => self.fail(self.buf.len(), Problem::Truncated),
        }
    }

    /// An unsigned LEB128 varint of at most 64 bits.
    fn varint(&mut self) -> Walked<u64> {
        let at = self.pos;
        let mut v = 0u64;
        for i in 0..MAX_VARINT {
            let b = self.byte()?;
            // The tenth byte holds bit 63 only.
            if i == MAX_VARINT - 1 && b > 1 {
                return self.fail(at, Problem::LongVarint);
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        self.fail(at, Problem::LongVarint)
    }

    fn zigzag(&mut self) -> Walked<i64> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    /// Refuses `count` elements of at least `min` bytes each when fewer bytes are left.
    fn check_count(&self, at: usize, kind: &'static str, count: u64, min: u64) -> Walked<()> {
        if count.saturating_mul(min) > self.left() as u64 {
            return self.fail(
                at,
                Problem::TooMany {
                    kind,
                    count,
                    min,
                    left: self.left(),
                },
            );
        }
        Ok(())
    }

    /// A struct: fields until the stop byte. `def` names the known fields (None: skipped).
    fn structure(&mut self, def: Option<&'static Def>, depth: usize) -> Walked<()> {
        if depth > MAX_DEPTH {
            return self.fail(self.pos, Problem::TooDeep);
        }
        let mut last: i16 = 0;
        loop {
            let at = self.pos;
            let header = self.byte()?;
            if header == code::STOP {
                break;
            }
            let (delta, t) = (header >> 4, header & 0x0f);
            if t == code::STOP {
                // The spec's stop is 0x00; parquet 60.1 stops on any low nibble 0.
                return self.fail(at, Problem::BadStop(header));
            }
            if t > code::UUID {
                return self.fail(at, Problem::BadType(t));
            }
            let id = if delta == 0 {
                // Long form: the id follows as a zigzag i16.
                let v = self.zigzag()?;
                i16::try_from(v).or_else(|_| self.fail(at, Problem::BadFieldId(v)))?
            } else {
                match last.checked_add(i16::from(delta)) {
                    Some(id) => id,
                    None => {
                        return self
                            .fail(at, Problem::BadFieldId(i64::from(last) + i64::from(delta)))
                    }
                }
            };
            let known = def.and_then(|d| d.field(id).map(|ty| (d.name, ty)));
            match known {
                Some((owner, ty)) if !ty.accepts(t) => {
                    return self.fail(
                        at,
                        Problem::WrongType {
                            owner,
                            id,
                            found: code_name(t),
                            expected: ty.name(),
                        },
                    )
                }
                Some((owner, Ty::I8 | Ty::I16 | Ty::I32 | Ty::I64)) => {
                    let vat = self.pos;
                    let v = if t == code::BYTE {
                        i64::from(self.byte()? as i8)
                    } else {
                        self.zigzag()?
                    };
                    if let Err(p) = self.obs.int(owner, id, v) {
                        return self.fail(vat, p);
                    }
                }
                Some((owner, ty)) => self.value(t, Some(ty), Some((owner, id)), depth)?,
                None => self.value(t, None, None, depth)?,
            }
            last = id;
        }
        if let Some(d) = def {
            if let Err(p) = self.obs.end(d.name) {
                return self.fail(self.pos, p);
            }
        }
        Ok(())
    }

    /// A field's value of wire type `t`: a boolean field has none (its type is its value).
    fn value(
        &mut self,
        t: u8,
        ty: Option<Ty>,
        field: Option<(&'static str, i16)>,
        depth: usize,
    ) -> Walked<()> {
        match t {
            code::TRUE | code::FALSE => Ok(()),
            _ => self.element(t, ty, field, depth),
        }
    }

    /// A value of wire type `t` as a list, set or map element (a boolean is one byte).
    fn element(
        &mut self,
        t: u8,
        ty: Option<Ty>,
        field: Option<(&'static str, i16)>,
        depth: usize,
    ) -> Walked<()> {
        let at = self.pos;
        match t {
            code::TRUE | code::FALSE | code::BYTE => self.byte().map(drop),
            code::I16 | code::I32 | code::I64 => self.varint().map(drop),
            code::DOUBLE => self.skip(8),
            code::UUID => self.skip(16),
            code::BINARY => {
                let len = self.varint()?;
                if len > self.left() as u64 {
                    return self.fail(
                        at,
                        Problem::TooLong {
                            len,
                            left: self.left(),
                        },
                    );
                }
                self.skip(len)
            }
            code::LIST | code::SET => self.list(t, ty, field, depth + 1),
            code::MAP => self.map(depth + 1),
            code::STRUCT => {
                let def = match ty {
                    Some(Ty::Struct(d)) => Some(d),
                    _ => None,
                };
                self.structure(def, depth + 1)
            }
            _ => self.fail(at, Problem::BadType(t)),
        }
    }

    /// A list or set: a header byte (size in the high nibble, 15 = a varint size follows;
    /// element type in the low nibble), then the elements.
    fn list(
        &mut self,
        t: u8,
        ty: Option<Ty>,
        field: Option<(&'static str, i16)>,
        depth: usize,
    ) -> Walked<()> {
        if depth > MAX_DEPTH {
            return self.fail(self.pos, Problem::TooDeep);
        }
        let kind = if t == code::SET { "set" } else { "list" };
        let at = self.pos;
        let header = self.byte()?;
        if header == 0 {
            // Some writers write an empty list as 0x00 (type 0); parquet 60.1 accepts it.
            return Ok(());
        }
        let elem = header & 0x0f;
        let count = match header >> 4 {
            15 => self.varint()?,
            n => u64::from(n),
        };
        if elem == code::STOP || elem > code::UUID {
            return self.fail(at, Problem::BadType(elem));
        }
        let elem_ty = match (ty, field) {
            (Some(Ty::List(e)), Some((owner, id))) => {
                if !e.accepts(elem) {
                    return self.fail(
                        at,
                        Problem::WrongElement {
                            owner,
                            id,
                            found: code_name(elem),
                            expected: e.name(),
                        },
                    );
                }
                Some(*e)
            }
            _ => None,
        };
        if count > 0 && (elem == code::TRUE || elem == code::FALSE) {
            return self.fail(at, Problem::Booleans { kind, count });
        }
        self.check_count(at, kind, count, min_size(elem))?;
        for _ in 0..count {
            self.element(elem, elem_ty, None, depth)?;
        }
        Ok(())
    }

    /// A map: a varint size, then (when not empty) one byte of key and value types, then
    /// the pairs. No Parquet struct has a map: its entries are only skipped.
    fn map(&mut self, depth: usize) -> Walked<()> {
        if depth > MAX_DEPTH {
            return self.fail(self.pos, Problem::TooDeep);
        }
        let at = self.pos;
        let count = self.varint()?;
        if count == 0 {
            return Ok(());
        }
        let types = self.byte()?;
        let (k, v) = (types >> 4, types & 0x0f);
        for t in [k, v] {
            if t == code::STOP || t > code::UUID {
                return self.fail(at, Problem::BadType(t));
            }
        }
        let is_bool = |t: u8| t == code::TRUE || t == code::FALSE;
        if is_bool(k) || is_bool(v) {
            return self.fail(at, Problem::Booleans { kind: "map", count });
        }
        self.check_count(at, "map", count, min_size(k) + min_size(v))?;
        for _ in 0..count {
            self.element(k, None, None, depth)?;
            self.element(v, None, None, depth)?;
        }
        Ok(())
    }
}

/// Tracks the schema tree's depth from the `num_children` of each `SchemaElement` (the
/// list is the tree in depth-first order), refusing one deeper than [`MAX_SCHEMA_DEPTH`].
#[derive(Default)]
struct SchemaDepth {
    /// `num_children` of the element being walked.
    children: Option<i64>,
    /// Children still to come of each open group, outermost first.
    open: Vec<i64>,
}

impl Observer for SchemaDepth {
    fn int(
        &mut self,
        owner: &'static str,
        id: i16,
        value: i64,
    ) -> std::result::Result<(), Problem> {
        if owner == "SchemaElement" && id == 5 {
            self.children = Some(value);
        }
        Ok(())
    }

    fn end(&mut self, owner: &'static str) -> std::result::Result<(), Problem> {
        if owner != "SchemaElement" {
            return Ok(());
        }
        // This element fills one slot of its parent.
        if let Some(top) = self.open.last_mut() {
            *top -= 1;
        }
        match self.children.take() {
            Some(n) if n > 0 => {
                self.open.push(n);
                if self.open.len() > MAX_SCHEMA_DEPTH {
                    return Err(Problem::Refused(format!(
                        "a schema nested deeper than {MAX_SCHEMA_DEPTH} levels"
                    )));
                }
            }
            _ => {}
        }
        while self.open.last().is_some_and(|&n| n <= 0) {
            self.open.pop();
        }
        Ok(())
    }
}

/// Reads up to `len` bytes at `offset` into `buf` (fewer at end of file).
fn read_at(file: &File, path: &Path, offset: u64, len: usize, buf: &mut Vec<u8>) -> Result<()> {
    let mut f = file;
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| DataError::io(path, e))?;
    buf.clear();
    f.take(len as u64)
        .read_to_end(buf)
        .map_err(|e| DataError::io(path, e))?;
    Ok(())
}

fn corrupt(path: &Path, reason: impl std::fmt::Display) -> DataError {
    DataError::invalid(path, format!("corrupt parquet file: {reason}"))
}

/// Checks the file's tail (footer length and `PAR1`) and walks its footer, before the
/// parquet crate reads it.
pub(crate) fn check_footer(file: &File, path: &Path, file_len: u64) -> Result<()> {
    // "PAR1", the metadata, its length (4 bytes), "PAR1".
    if file_len < 12 {
        return Err(corrupt(
            path,
            format!("{file_len} bytes, too short for a parquet file (12 at least)"),
        ));
    }
    let mut tail = Vec::with_capacity(8);
    read_at(file, path, file_len - 8, 8, &mut tail)?;
    let (len_bytes, magic) = tail.split_at(4);
    if magic == b"PARE" {
        return Err(corrupt(
            path,
            "the footer is encrypted (PARE), which this reader does not support",
        ));
    }
    if magic != b"PAR1" {
        return Err(corrupt(path, "the file does not end with PAR1"));
    }
    let mut n = [0u8; 4];
    n.copy_from_slice(len_bytes);
    let meta_len = u64::from(u32::from_le_bytes(n));
    if meta_len > file_len - 12 {
        return Err(corrupt(
            path,
            format!(
                "the footer declares {meta_len} bytes of metadata, more than the file's \
                 {file_len} bytes hold"
            ),
        ));
    }
    scalegnn_limits::check_alloc("the parquet footer", u128::from(meta_len))
        .map_err(|e| corrupt(path, e))?;
    let start = file_len - 8 - meta_len;
    let mut meta = Vec::new();
    read_at(file, path, start, meta_len as usize, &mut meta)?;
    walk(&meta, &FILE_META_DATA, &mut SchemaDepth::default()).map_err(|e| {
        corrupt(
            path,
            format!(
                "footer metadata (bytes {start}..{}) at byte {}: {}",
                start + meta_len,
                start + e.at as u64,
                e.problem
            ),
        )
    })?;
    Ok(())
}

/// Bytes a PLAIN-encoded value of a column takes at least, for the dictionary check.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ValueWidth {
    /// Fixed width in bytes. Booleans count one byte although PLAIN packs eight per byte:
    /// the decoder stores a byte per dictionary entry, and a boolean dictionary has two.
    Fixed(u64),
    /// BYTE_ARRAY: a 4-byte length then the bytes, so 4 at least.
    Bytes,
}

impl ValueWidth {
    /// The width of a column of `physical` type (`type_length` for FIXED_LEN_BYTE_ARRAY).
    pub(crate) fn of(physical: parquet::basic::Type, type_length: i32) -> Self {
        use parquet::basic::Type as T;
        match physical {
            T::BOOLEAN => ValueWidth::Fixed(1),
            T::INT32 | T::FLOAT => ValueWidth::Fixed(4),
            T::INT64 | T::DOUBLE => ValueWidth::Fixed(8),
            T::INT96 => ValueWidth::Fixed(12),
            T::FIXED_LEN_BYTE_ARRAY => {
                ValueWidth::Fixed(u64::try_from(type_length.max(1)).unwrap_or(1))
            }
            T::BYTE_ARRAY => ValueWidth::Bytes,
        }
    }

    fn bytes(self, n: u64) -> u128 {
        let w = match self {
            ValueWidth::Fixed(w) => w,
            ValueWidth::Bytes => 4,
        };
        u128::from(n) * u128::from(w)
    }
}

/// A column chunk whose pages are about to be read.
pub(crate) struct Chunk<'a> {
    /// Where it is named in errors, e.g. `row group 0 column "src"`.
    pub name: &'a str,
    /// First byte (the dictionary page's when there is one).
    pub start: u64,
    /// Bytes (`total_compressed_size`).
    pub len: u64,
    /// Least bytes per PLAIN value.
    pub width: ValueWidth,
    /// Whether pages are stored as is (codec UNCOMPRESSED): then a page's decoded bytes are
    /// its stored bytes, whatever `uncompressed_page_size` says.
    pub uncompressed: bool,
    /// Whether pages are GZIP: parquet 60.1 inflates such a page whole (`read_to_end`),
    /// whatever `uncompressed_page_size` says, and compares the sizes afterwards.
    pub gzip: bool,
}

/// Most bytes deflate can inflate from one stored byte (zlib's technical notes: 1032:1).
const DEFLATE_MAX_RATIO: u128 = 1032;

/// The fields of a page header the checks use.
#[derive(Default)]
struct PageFacts {
    kind: Option<i64>,
    uncompressed: Option<i64>,
    compressed: Option<i64>,
    dict_values: Option<i64>,
    data_values: Option<i64>,
    /// Encoding of a data page's values (v1 field 2, v2 field 4).
    data_encoding: Option<i64>,
    v2_values: Option<i64>,
    v2_def_bytes: Option<i64>,
    v2_rep_bytes: Option<i64>,
}

impl Observer for PageFacts {
    fn int(
        &mut self,
        owner: &'static str,
        id: i16,
        value: i64,
    ) -> std::result::Result<(), Problem> {
        // A repeated field overwrites, as in the decoder.
        let slot = match (owner, id) {
            ("PageHeader", 1) => &mut self.kind,
            ("PageHeader", 2) => &mut self.uncompressed,
            ("PageHeader", 3) => &mut self.compressed,
            ("DictionaryPageHeader", 1) => &mut self.dict_values,
            ("DataPageHeader", 1) => &mut self.data_values,
            ("DataPageHeader", 2) => &mut self.data_encoding,
            ("DataPageHeaderV2", 4) => &mut self.data_encoding,
            ("DataPageHeaderV2", 1) => &mut self.v2_values,
            ("DataPageHeaderV2", 5) => &mut self.v2_def_bytes,
            ("DataPageHeaderV2", 6) => &mut self.v2_rep_bytes,
            _ => return Ok(()),
        };
        *slot = Some(value);
        Ok(())
    }
}

/// Page types (parquet.thrift `PageType`).
const DATA_PAGE: i64 = 0;
const DICTIONARY_PAGE: i64 = 2;
const DATA_PAGE_V2: i64 = 3;

/// Encodings whose values index a dictionary (parquet.thrift `Encoding`).
const PLAIN_DICTIONARY: i64 = 2;
const RLE_DICTIONARY: i64 = 8;

/// Walks the page headers of `chunk` as the decoder will (header, then
/// `compressed_page_size` bytes of data, up to the chunk's end), refusing a header that is
/// malformed or runs past the chunk, a negative size or count, page data past the chunk, an
/// uncompressed size above the memory cap, a GZIP page that could inflate past half of it,
/// level bytes larger than a v2 page, a dictionary
/// declaring more values than its page holds, and a dictionary-encoded data page with no
/// dictionary page before it (parquet 60.1 panics on that). One read per page, of a few KiB.
pub(crate) fn check_pages(file: &File, path: &Path, chunk: &Chunk) -> Result<()> {
    let bad = |at: u64, what: String| {
        corrupt(
            path,
            format!("{}: page header at byte {at} {what}", chunk.name),
        )
    };
    let end = chunk.start.checked_add(chunk.len).ok_or_else(|| {
        corrupt(
            path,
            format!("{}: the column chunk's end overflows", chunk.name),
        )
    })?;
    let (mem_cap, _) = scalegnn_limits::memory_cap();
    let mut win: Vec<u8> = Vec::new();
    let mut win_start = 0u64;
    let mut at = chunk.start;
    let mut has_dictionary = false;
    while at < end {
        let room = usize::try_from(end - at).unwrap_or(usize::MAX);
        let (header_len, facts) = loop {
            let have: &[u8] = match at
                .checked_sub(win_start)
                .and_then(|o| usize::try_from(o).ok())
            {
                Some(o) if o < win.len() => &win[o..],
                _ => &[],
            };
            let have = &have[..have.len().min(room)];
            let mut facts = PageFacts::default();
            let limit = room.min(MAX_PAGE_HEADER);
            match walk(have, &PAGE_HEADER, &mut facts) {
                Ok(n) => break (n, facts),
                // The window may end before the header does: a larger one is read, up to
                // the chunk's end or MAX_PAGE_HEADER, before a size is held against it.
                Err(e) if e.problem.wants_bytes() && have.len() < limit => {
                    let want = if have.len() < HEADER_READ {
                        HEADER_READ
                    } else {
                        MAX_PAGE_HEADER
                    };
                    let want = want.min(limit);
                    read_at(file, path, at, want, &mut win)?;
                    win_start = at;
                    if win.len() < want {
                        // check_chunks keeps chunks inside the file; it shrank since.
                        return Err(bad(at, "lies past the end of the file".to_string()));
                    }
                }
                Err(e) if e.problem == Problem::Truncated => {
                    return Err(bad(
                        at,
                        if room <= MAX_PAGE_HEADER {
                            "runs past the end of the column chunk".to_string()
                        } else {
                            format!("is larger than {MAX_PAGE_HEADER} bytes")
                        },
                    ));
                }
                Err(e) => {
                    return Err(bad(at, format!("(byte {} of it): {}", e.at, e.problem)));
                }
            }
        };
        let data_start = at + header_len as u64;
        let comp = check_page(&facts, chunk, end - data_start, mem_cap, has_dictionary)
            .map_err(|what| bad(at, what))?;
        has_dictionary |= facts.kind == Some(DICTIONARY_PAGE);
        at = data_start + comp;
    }
    Ok(())
}

/// The checks of one page header (see [`check_pages`]), given the chunk's bytes `left`
/// after it and whether a dictionary page came before; returns the page's stored bytes, or
/// what is wrong (to follow "page header at byte N").
fn check_page(
    f: &PageFacts,
    chunk: &Chunk,
    left: u64,
    mem_cap: u64,
    has_dictionary: bool,
) -> std::result::Result<u64, String> {
    let (Some(kind), Some(unc), Some(comp)) = (f.kind, f.uncompressed, f.compressed) else {
        return Err("lacks its type or sizes (fields 1-3 are required)".to_string());
    };
    let (Ok(unc_bytes), Ok(comp_bytes)) = (u64::try_from(unc), u64::try_from(comp)) else {
        return Err(format!(
            "declares a negative page size ({comp} stored, {unc} uncompressed)"
        ));
    };
    if comp_bytes > left {
        return Err(format!(
            "declares {comp} bytes of page data, past the end of the column chunk ({left} \
             bytes left)"
        ));
    }
    // A GZIP bomb declares a small page and inflates to gigabytes before the decoder compares
    // sizes: the most it can inflate to must fit half the memory cap (the decoder's buffer
    // grows by doubling).
    let most = u128::from(comp_bytes) * DEFLATE_MAX_RATIO;
    if chunk.gzip && most > u128::from(mem_cap / 2) {
        return Err(format!(
            "declares a GZIP page of {comp} bytes, which may inflate to {most} bytes, more \
             than half the memory cap ({mem_cap} bytes): the decoder inflates a page whole \
             before checking its size"
        ));
    }
    // The decoder allocates the uncompressed size before decompressing.
    if unc_bytes > mem_cap {
        return Err(format!(
            "declares {unc} bytes uncompressed, more than the memory cap ({mem_cap} bytes)"
        ));
    }
    let dict_encoded = matches!(f.data_encoding, Some(PLAIN_DICTIONARY | RLE_DICTIONARY));
    if matches!(kind, DATA_PAGE | DATA_PAGE_V2) && dict_encoded && !has_dictionary {
        // parquet 60.1 panics on it ("Decoder for dict should have been set").
        return Err(
            "is of a dictionary-encoded data page, and no dictionary page precedes it".to_string(),
        );
    }
    match kind {
        DICTIONARY_PAGE => {
            if let Some(n) = f.dict_values {
                let Ok(n) = u64::try_from(n) else {
                    return Err(format!("declares {n} dictionary values"));
                };
                // The decoder sizes the dictionary before decoding it: the values must fit
                // the page's decoded bytes.
                let decoded = if chunk.uncompressed {
                    unc_bytes.min(comp_bytes)
                } else {
                    unc_bytes
                };
                let need = chunk.width.bytes(n);
                if need > u128::from(decoded) {
                    return Err(format!(
                        "declares a dictionary of {n} values ({need} bytes at least), more \
                         than the page's {decoded} bytes"
                    ));
                }
            }
        }
        DATA_PAGE => {
            if let Some(n) = f.data_values.filter(|&n| n < 0) {
                return Err(format!("declares {n} values"));
            }
        }
        DATA_PAGE_V2 => {
            if let Some(n) = f.v2_values.filter(|&n| n < 0) {
                return Err(format!("declares {n} values"));
            }
            let def = f.v2_def_bytes.unwrap_or(0);
            let rep = f.v2_rep_bytes.unwrap_or(0);
            // i64: the decoder's i32 sum overflows on two large lengths.
            if def < 0 || rep < 0 || def + rep > unc {
                return Err(format!(
                    "declares {def} + {rep} bytes of levels in a page of {unc} bytes"
                ));
            }
        }
        // Index pages are skipped by the decoder; an unknown type is its error.
        _ => {}
    }
    Ok(comp_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An observer that takes no interest.
    struct Ignore;

    impl Observer for Ignore {}

    fn walk_plain(buf: &[u8]) -> std::result::Result<usize, ThriftError> {
        walk(buf, &EMPTY, &mut Ignore)
    }

    #[test]
    fn scalars_and_containers_are_walked_to_the_stop() {
        // Field 1 i32 = 150 (zigzag 300 = 0xac 0x02), field 2 binary "ab", field 3 true,
        // field 4 list of 3 i64, field 20 (long form) double, stop.
        let buf = [
            0x15, 0xac, 0x02, 0x18, 0x02, b'a', b'b', 0x11, 0x19, 0x36, 0x02, 0x04, 0x06, 0x07,
            0x28, 1, 2, 3, 4, 5, 6, 7, 8, 0x00, 0xee,
        ];
        assert_eq!(walk_plain(&buf), Ok(buf.len() - 1));
        // Map of 2 (i32 -> binary), a set of 1 struct, uuid, stop.
        let buf = [
            0x1b, 0x02, 0x58, 0x00, 0x00, 0x04, 0x01, b'x', 0x1a, 0x1c, 0x00, 0x1d, 0, 1, 2, 3, 4,
            5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0x00,
        ];
        assert_eq!(walk_plain(&buf), Ok(buf.len()));
    }

    #[test]
    fn counts_and_lengths_are_held_to_the_bytes_left() {
        // A list of 2^31 - 1 i32 in 6 bytes.
        let buf = [0x19, 0xf5, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00];
        let e = walk_plain(&buf).unwrap_err();
        assert!(
            matches!(
                e.problem,
                Problem::TooMany {
                    count: 2147483647,
                    ..
                }
            ),
            "{e}"
        );
        // A list of 2 doubles needs 16 bytes.
        let buf = [0x19, 0x27, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x00];
        assert!(matches!(
            walk_plain(&buf).unwrap_err().problem,
            Problem::TooMany { min: 8, .. }
        ));
        // A binary of 100 bytes.
        let buf = [0x18, 0x64, 0x00];
        assert!(matches!(
            walk_plain(&buf).unwrap_err().problem,
            Problem::TooLong { len: 100, .. }
        ));
        // A map of 3 entries in 2 bytes.
        let buf = [0x1b, 0x03, 0x55, 0x00, 0x00];
        assert!(matches!(
            walk_plain(&buf).unwrap_err().problem,
            Problem::TooMany { kind: "map", .. }
        ));
        // No stop byte.
        assert_eq!(
            walk_plain(&[0x15, 0x02]).unwrap_err().problem,
            Problem::Truncated
        );
    }

    #[test]
    fn boolean_collections_are_refused() {
        for buf in [
            &[0x19, 0x31, 1, 0, 1, 0][..],
            &[0x19, 0x12, 1, 0],
            &[0x1b, 0x01, 0x15, 1, 2, 0],
        ] {
            assert!(
                matches!(
                    walk_plain(buf).unwrap_err().problem,
                    Problem::Booleans { .. }
                ),
                "{buf:?}"
            );
        }
        // An empty one is harmless.
        assert_eq!(walk_plain(&[0x19, 0x01, 0x00]), Ok(3));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let long = [
            0x15, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02, 0x00,
        ];
        assert_eq!(walk_plain(&long).unwrap_err().problem, Problem::LongVarint);
        assert_eq!(
            walk_plain(&[0x1e, 0x00]).unwrap_err().problem,
            Problem::BadType(14)
        );
        assert_eq!(
            walk_plain(&[0x10]).unwrap_err().problem,
            Problem::BadStop(0x10)
        );
        // Long-form id 40000 (zigzag 80000).
        let buf = [0x05, 0x80, 0xf1, 0x04, 0x00, 0x00];
        assert_eq!(
            walk_plain(&buf).unwrap_err().problem,
            Problem::BadFieldId(40000)
        );
        // Deltas past i16::MAX: long form 32767, then a delta of 1.
        let buf = [0x05, 0xfe, 0xff, 0x03, 0x00, 0x15, 0x00, 0x00];
        assert_eq!(
            walk_plain(&buf).unwrap_err().problem,
            Problem::BadFieldId(32768)
        );
        // 65 nested lists.
        let mut deep = vec![0x19];
        deep.extend(std::iter::repeat_n(0x19, 65));
        deep.push(0x00);
        assert_eq!(walk_plain(&deep).unwrap_err().problem, Problem::TooDeep);
    }

    #[test]
    fn known_fields_must_have_the_type_the_decoder_reads() {
        // PageHeader field 7 (DictionaryPageHeader) sent as a binary.
        let buf = [0x15, 0x04, 0x15, 0x00, 0x15, 0x00, 0x48, 0x00, 0x00];
        let e = walk(&buf, &PAGE_HEADER, &mut Ignore).unwrap_err();
        assert!(matches!(e.problem, Problem::WrongType { id: 7, .. }), "{e}");
        // ColumnMetaData's encodings (list<i32>) sent as a list of binaries.
        let buf = [0x29, 0x18, 0x00, 0x00];
        let e = walk(&buf, &COLUMN_META_DATA, &mut Ignore).unwrap_err();
        assert!(
            matches!(e.problem, Problem::WrongElement { id: 2, .. }),
            "{e}"
        );
    }

    #[test]
    fn page_facts_are_read_from_nested_headers() {
        // type 2, sizes 24 and 24, DictionaryPageHeader { num_values: 3, encoding: 0 }.
        let buf = [
            0x15, 0x04, 0x15, 0x30, 0x15, 0x30, 0x4c, 0x15, 0x06, 0x15, 0x00, 0x00, 0x00,
        ];
        let mut f = PageFacts::default();
        assert_eq!(walk(&buf, &PAGE_HEADER, &mut f), Ok(buf.len()));
        assert_eq!(
            (f.kind, f.uncompressed, f.compressed, f.dict_values),
            (Some(2), Some(24), Some(24), Some(3))
        );
    }

    fn chunk(gzip: bool, uncompressed: bool) -> Chunk<'static> {
        Chunk {
            name: "row group 0 column \"x\"",
            start: 4,
            len: 1 << 30,
            width: ValueWidth::Fixed(8),
            uncompressed,
            gzip,
        }
    }

    fn facts(kind: i64, unc: i64, comp: i64) -> PageFacts {
        PageFacts {
            kind: Some(kind),
            uncompressed: Some(unc),
            compressed: Some(comp),
            ..Default::default()
        }
    }

    #[test]
    fn page_sizes_are_held_to_the_chunk_and_the_memory_cap() {
        let cap = 64 << 20;
        let c = chunk(false, false);
        assert_eq!(check_page(&facts(0, 100, 50), &c, 50, cap, false), Ok(50));
        let e = check_page(&facts(0, 100, 51), &c, 50, cap, false).unwrap_err();
        assert!(e.contains("51 bytes of page data, past the end"), "{e}");
        let e = check_page(&facts(0, -1, 5), &c, 50, cap, false).unwrap_err();
        assert!(e.contains("negative page size"), "{e}");
        let e = check_page(&facts(0, cap as i64 + 1, 5), &c, 50, cap, false).unwrap_err();
        assert!(e.contains("more than the memory cap"), "{e}");
        let missing = PageFacts {
            kind: Some(0),
            ..Default::default()
        };
        assert!(check_page(&missing, &c, 50, cap, false).is_err());
    }

    #[test]
    fn gzip_pages_that_could_inflate_past_half_the_cap_are_refused() {
        let cap = 64 << 20;
        // 32 MiB / 1032: 32,513 stored bytes at most.
        let fits = facts(0, 24, 32_513);
        assert!(check_page(&fits, &chunk(true, false), 1 << 20, cap, false).is_ok());
        let bomb = facts(0, 24, 32_514);
        let e = check_page(&bomb, &chunk(true, false), 1 << 20, cap, false).unwrap_err();
        assert!(e.contains("GZIP page of 32514 bytes"), "{e}");
        // Snappy writes into a buffer of the declared size: no such bound.
        assert!(check_page(&bomb, &chunk(false, false), 1 << 20, cap, false).is_ok());
    }

    #[test]
    fn dictionaries_must_fit_their_page() {
        let cap = 64 << 20;
        let mut f = facts(2, 24, 24);
        f.dict_values = Some(3);
        assert!(check_page(&f, &chunk(false, true), 100, cap, false).is_ok());
        f.dict_values = Some(4);
        let e = check_page(&f, &chunk(false, true), 100, cap, false).unwrap_err();
        assert!(
            e.contains("a dictionary of 4 values (32 bytes at least)"),
            "{e}"
        );
        // Stored as is, the page holds its stored bytes whatever the uncompressed size says.
        let mut f = facts(2, 1 << 20, 24);
        f.dict_values = Some(1000);
        assert!(check_page(&f, &chunk(false, true), 100, cap, false).is_err());
        assert!(check_page(&f, &chunk(false, false), 100, cap, false).is_ok());
        f.dict_values = Some(-1);
        assert!(check_page(&f, &chunk(false, false), 100, cap, false).is_err());
    }

    #[test]
    fn data_pages_need_their_dictionary_and_sane_levels() {
        let cap = 64 << 20;
        let c = chunk(false, false);
        let mut f = facts(0, 24, 24);
        f.data_encoding = Some(RLE_DICTIONARY);
        assert!(check_page(&f, &c, 100, cap, false).is_err());
        assert!(check_page(&f, &c, 100, cap, true).is_ok());
        f.data_values = Some(-3);
        assert!(check_page(&f, &c, 100, cap, true).is_err());
        let mut v2 = facts(3, 24, 24);
        v2.v2_def_bytes = Some(20);
        v2.v2_rep_bytes = Some(4);
        assert!(check_page(&v2, &c, 100, cap, false).is_ok());
        v2.v2_rep_bytes = Some(i64::from(i32::MAX));
        let e = check_page(&v2, &c, 100, cap, false).unwrap_err();
        assert!(e.contains("bytes of levels"), "{e}");
    }

    #[test]
    fn deep_schemas_are_refused() {
        let mut d = SchemaDepth::default();
        // Root with one child, and so on: MAX_SCHEMA_DEPTH groups, then one more.
        for _ in 0..MAX_SCHEMA_DEPTH {
            d.int("SchemaElement", 5, 1).unwrap();
            d.end("SchemaElement").unwrap();
        }
        d.int("SchemaElement", 5, 1).unwrap();
        assert!(d.end("SchemaElement").is_err());
        // A flat schema closes its groups.
        let mut d = SchemaDepth::default();
        d.int("SchemaElement", 5, 3).unwrap();
        d.end("SchemaElement").unwrap();
        for _ in 0..3 {
            d.end("SchemaElement").unwrap();
        }
        assert!(d.open.is_empty());
    }
}
