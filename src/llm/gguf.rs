//! GGUF model files, llama.cpp's format for LLM weights: reading the header, the metadata and
//! the tensor directory, and handing out the tensor data, read into memory at open.
//!
//! # Layout (versions 2 and 3, little-endian)
//!
//! ```text
//! "GGUF"  u32 version  u64 tensor_count  u64 kv_count
//! kv_count × { string key, u32 value_type, value }
//! tensor_count × { string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type, u64 offset }
//! padding to the alignment, then the data section
//! ```
//!
//! A string is a `u64` byte length and UTF-8 bytes (no terminator). Value types are numbered
//! 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool (one byte), 8 string, 9 array,
//! 10 u64, 11 i64, 12 f64; an array is a `u32` element type, a `u64` count and the elements
//! (arrays may nest). Tensor dims are innermost first (`dims[0]` is the length of a row, the
//! contiguous direction) and `offset` is counted from the start of the data section, which
//! begins at the first multiple of the alignment (`general.alignment`, default 32) after the
//! tensor directory. Each tensor's data is its rows one after another, a row being
//! `dims[0] / block_size` blocks of the tensor's ggml type.
//!
//! Version 1 used 32-bit counts and lengths and is refused; version 3 only added big-endian
//! files, which show up here as an absurd version number and are refused as well.
//!
//! Nothing here trusts the file: the header is read from at most its first
//! [`MAX_HEADER_BYTES`], every count and length in it is checked against the header bytes
//! that remain before anything is allocated for it, and every problem is a [`GgufError`]
//! naming the file, the place (byte offset, key or tensor) and what was expected.
//!
//! The tensor data is copied into memory of this process (aligned to 64 bytes) when the file
//! is opened, not memory-mapped: a model file replaced or cut short while voxd runs (`cp`
//! over it truncates it first) would otherwise kill the process with SIGBUS the next time a
//! page past the new end is touched.

use std::collections::{HashMap, TryReserveError};
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::ops::{Deref, Range};
use std::path::{Path, PathBuf};

use crate::kernels::quant::QuantType;

/// The first four bytes of every GGUF file.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// The data alignment when the file does not set `general.alignment`.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The metadata key that overrides [`DEFAULT_ALIGNMENT`].
pub const ALIGNMENT_KEY: &str = "general.alignment";
/// ggml tensors have at most four dimensions.
pub const MAX_DIMS: usize = 4;
/// Arrays of arrays deeper than this are refused, so a hostile file cannot exhaust the stack
/// (real files nest at most once).
const MAX_ARRAY_DEPTH: usize = 8;
/// The most bytes the header (metadata and tensor directory) may take. The largest
/// tokenizers in use (vocabularies of 256k tokens, merges of 280k) take about 10 MB; parsed,
/// a header takes at most a few times its size.
pub const MAX_HEADER_BYTES: u64 = 64 << 20;
/// The most tensors a file may list (real models list hundreds to a few thousand).
pub const MAX_TENSORS: u64 = 1 << 16;
/// The most metadata entries a file may hold (real models hold tens).
pub const MAX_METADATA_ENTRIES: u64 = 1 << 16;

/// What can go wrong reading a GGUF file; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened or mapped.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The magic number is wrong.
    #[error("{}: not a GGUF file: it starts with {found:02x?}, expected the bytes \"GGUF\"", path.display())]
    NotGguf { path: PathBuf, found: Vec<u8> },
    /// A version other than 2 or 3.
    #[error("{}: GGUF version {version} is not supported (voxd reads versions 2 and 3): {detail}", path.display())]
    UnsupportedVersion {
        path: PathBuf,
        version: u32,
        detail: &'static str,
    },
    /// The file ends inside a field.
    #[error("{}: truncated: {what} at byte {offset} needs {needed} bytes, but the file has {file_len}", path.display())]
    Truncated {
        path: PathBuf,
        what: String,
        offset: u64,
        needed: u64,
        file_len: u64,
    },
    /// A header or metadata field holds something impossible.
    #[error("{}: {what} at byte {offset}: {problem}", path.display())]
    Malformed {
        path: PathBuf,
        what: String,
        offset: u64,
        problem: String,
    },
    /// A tensor's directory entry is impossible or its data lies outside the file.
    #[error("{}: tensor {name:?}: {problem}", path.display())]
    Tensor {
        path: PathBuf,
        name: String,
        problem: String,
    },
    /// A metadata key that was asked for is absent.
    #[error("{}: metadata key {key:?} is missing", path.display())]
    MissingKey { path: PathBuf, key: String },
    /// A metadata value has another type than the one asked for, or does not fit it.
    #[error("{}: metadata key {key:?} holds {found}, expected {expected}", path.display())]
    WrongType {
        path: PathBuf,
        key: String,
        expected: &'static str,
        found: String,
    },
    /// The tensor data does not fit in this process's memory.
    #[error("{}: cannot hold its {bytes} bytes of tensor data in memory: {source}", path.display())]
    OutOfMemory {
        path: PathBuf,
        bytes: u64,
        #[source]
        source: TryReserveError,
    },
}

/// The type of a metadata value, numbered as in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl ValueType {
    /// The type with this number in the file, if there is one.
    pub fn from_id(id: u32) -> Option<Self> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// The name used in messages.
    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }

    /// The fewest bytes one value of this type takes in the file (a string's length field, an
    /// array's type and count), used to refuse counts the rest of the file cannot hold.
    fn min_size(self) -> u64 {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 | String => 8,
            Array => 12,
        }
    }
}

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Array),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A metadata array: its elements all have one type, kept in a typed vector (token lists have
/// tens of thousands of entries).
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<Array>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl Array {
    /// The type of the elements.
    pub fn element_type(&self) -> ValueType {
        match self {
            Array::U8(_) => ValueType::U8,
            Array::I8(_) => ValueType::I8,
            Array::U16(_) => ValueType::U16,
            Array::I16(_) => ValueType::I16,
            Array::U32(_) => ValueType::U32,
            Array::I32(_) => ValueType::I32,
            Array::F32(_) => ValueType::F32,
            Array::Bool(_) => ValueType::Bool,
            Array::String(_) => ValueType::String,
            Array::Array(_) => ValueType::Array,
            Array::U64(_) => ValueType::U64,
            Array::I64(_) => ValueType::I64,
            Array::F64(_) => ValueType::F64,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F64(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Value {
    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// Any integer value, widened (so the typed getters can accept e.g. a `u64` count where
    /// a `u32` was meant, as long as it fits).
    fn as_integer(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v.into(),
            Value::I8(v) => v.into(),
            Value::U16(v) => v.into(),
            Value::I16(v) => v.into(),
            Value::U32(v) => v.into(),
            Value::I32(v) => v.into(),
            Value::U64(v) => v.into(),
            Value::I64(v) => v.into(),
            _ => return None,
        })
    }
}

impl fmt::Display for Value {
    /// A short description for messages: the type and, for scalars, the value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) if s.len() > 40 => write!(f, "a string of {} bytes", s.len()),
            Value::String(s) => write!(f, "the string {s:?}"),
            Value::Array(a) => write!(
                f,
                "an array of {} {} elements",
                a.len(),
                a.element_type().name()
            ),
            Value::Bool(v) => write!(f, "the bool {v}"),
            Value::F32(v) => write!(f, "the f32 {v}"),
            Value::F64(v) => write!(f, "the f64 {v}"),
            other => match other.as_integer() {
                Some(v) => write!(f, "the {} {v}", other.value_type().name()),
                None => write!(f, "a {}", other.value_type().name()),
            },
        }
    }
}

/// The tensor element and block types of ggml, numbered as in the file. Quantized types store
/// blocks of `block_size` values in `type_size` bytes.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    I8,
    I16,
    I32,
    I64,
    F64,
    IQ1_M,
    BF16,
    TQ1_0,
    TQ2_0,
    MXFP4,
    NVFP4,
    Q1_0,
}

/// (type, id in the file, name, values per block, bytes per block). Ids 4, 5, 31-33 and 36-38
/// belonged to formats ggml has since removed.
const GGML_TYPES: [(GgmlType, u32, &str, u64, u64); 34] = [
    (GgmlType::F32, 0, "F32", 1, 4),
    (GgmlType::F16, 1, "F16", 1, 2),
    (GgmlType::Q4_0, 2, "Q4_0", 32, 18),
    (GgmlType::Q4_1, 3, "Q4_1", 32, 20),
    (GgmlType::Q5_0, 6, "Q5_0", 32, 22),
    (GgmlType::Q5_1, 7, "Q5_1", 32, 24),
    (GgmlType::Q8_0, 8, "Q8_0", 32, 34),
    (GgmlType::Q8_1, 9, "Q8_1", 32, 40),
    (GgmlType::Q2_K, 10, "Q2_K", 256, 84),
    (GgmlType::Q3_K, 11, "Q3_K", 256, 110),
    (GgmlType::Q4_K, 12, "Q4_K", 256, 144),
    (GgmlType::Q5_K, 13, "Q5_K", 256, 176),
    (GgmlType::Q6_K, 14, "Q6_K", 256, 210),
    (GgmlType::Q8_K, 15, "Q8_K", 256, 292),
    (GgmlType::IQ2_XXS, 16, "IQ2_XXS", 256, 66),
    (GgmlType::IQ2_XS, 17, "IQ2_XS", 256, 74),
    (GgmlType::IQ3_XXS, 18, "IQ3_XXS", 256, 98),
    (GgmlType::IQ1_S, 19, "IQ1_S", 256, 50),
    (GgmlType::IQ4_NL, 20, "IQ4_NL", 32, 18),
    (GgmlType::IQ3_S, 21, "IQ3_S", 256, 110),
    (GgmlType::IQ2_S, 22, "IQ2_S", 256, 82),
    (GgmlType::IQ4_XS, 23, "IQ4_XS", 256, 136),
    (GgmlType::I8, 24, "I8", 1, 1),
    (GgmlType::I16, 25, "I16", 1, 2),
    (GgmlType::I32, 26, "I32", 1, 4),
    (GgmlType::I64, 27, "I64", 1, 8),
    (GgmlType::F64, 28, "F64", 1, 8),
    (GgmlType::IQ1_M, 29, "IQ1_M", 256, 56),
    (GgmlType::BF16, 30, "BF16", 1, 2),
    (GgmlType::TQ1_0, 34, "TQ1_0", 256, 54),
    (GgmlType::TQ2_0, 35, "TQ2_0", 256, 66),
    (GgmlType::MXFP4, 39, "MXFP4", 32, 17),
    (GgmlType::NVFP4, 40, "NVFP4", 64, 36),
    (GgmlType::Q1_0, 41, "Q1_0", 128, 18),
];

impl GgmlType {
    /// Every type ggml currently defines, in id order.
    pub fn all() -> impl Iterator<Item = GgmlType> {
        GGML_TYPES.iter().map(|t| t.0)
    }

    /// The type with this id in the file, if ggml defines one.
    pub fn from_id(id: u32) -> Option<Self> {
        GGML_TYPES.iter().find(|t| t.1 == id).map(|t| t.0)
    }

    fn entry(self) -> &'static (GgmlType, u32, &'static str, u64, u64) {
        // Every variant has exactly one row (a unit test checks it), so the search succeeds.
        let index = GGML_TYPES.iter().position(|t| t.0 == self).unwrap_or(0);
        &GGML_TYPES[index]
    }

    /// The id stored in the file.
    pub fn id(self) -> u32 {
        self.entry().1
    }

    /// ggml's name for the type (`Q4_1`, `F32`, ...).
    pub fn name(self) -> &'static str {
        self.entry().2
    }

    /// Values per block (1 for the plain element types).
    pub fn block_size(self) -> u64 {
        self.entry().3
    }

    /// Bytes per block.
    pub fn type_size(self) -> u64 {
        self.entry().4
    }

    /// Whether voxd's kernels read this type (one of [`QuantType::ALL`]).
    pub fn is_supported(self) -> bool {
        QuantType::from_ggml_id(self.id()).is_some()
    }

    /// Bytes taken by `n` values, or `None` when `n` is not a whole number of blocks or the
    /// size overflows.
    pub fn bytes_for(self, n: u64) -> Option<u64> {
        if !n.is_multiple_of(self.block_size()) {
            return None;
        }
        (n / self.block_size()).checked_mul(self.type_size())
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One entry of the tensor directory, checked against the file when it was opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    name: String,
    dims: Vec<u64>,
    ggml_type: GgmlType,
    offset: u64,
    n_bytes: u64,
    /// Where the data lies in the file.
    range: Range<usize>,
}

impl TensorInfo {
    /// The tensor's name (`blk.0.attn_q.weight`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The dimensions as ggml orders them, innermost first: `dims()[0]` is the length of a
    /// row, the contiguous direction; a matrix of `n` rows of `k` values is `[k, n]`.
    pub fn dims(&self) -> &[u64] {
        &self.dims
    }

    /// The dimensions outermost first (row-major, as voxd's kernels describe shapes): the
    /// reverse of [`TensorInfo::dims`].
    pub fn shape(&self) -> Vec<u64> {
        self.dims.iter().rev().copied().collect()
    }

    /// The element or block type of the data.
    pub fn ggml_type(&self) -> GgmlType {
        self.ggml_type
    }

    /// The offset stored in the file, counted from the start of the data section.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The offset of the data from the start of the file.
    pub fn file_offset(&self) -> u64 {
        self.range.start as u64
    }

    /// The size of the data in bytes: rows × bytes per row.
    pub fn n_bytes(&self) -> u64 {
        self.n_bytes
    }

    /// The number of values (the product of the dims; 1 for a tensor without dims).
    pub fn n_elements(&self) -> u64 {
        // Checked not to overflow when the file was opened.
        self.dims.iter().product()
    }

    /// Values per row (`dims()[0]`; 1 for a tensor without dims).
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }

    /// The number of rows: the product of every dim but the first.
    pub fn n_rows(&self) -> u64 {
        self.dims.iter().skip(1).product()
    }

    /// Bytes per row: `row_len / block_size` blocks.
    pub fn row_bytes(&self) -> u64 {
        self.row_len() / self.ggml_type.block_size() * self.ggml_type.type_size()
    }
}

/// 64 bytes aligned to 64: the unit of [`AlignedBytes`], so that tensor data at aligned
/// offsets is as aligned in memory as the file promises (up to 64) and can be read as `f32`
/// and `f16` slices in place.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

// SAFETY: `Line` is 64 plain bytes: no padding (its size equals its alignment), every bit
// pattern valid, and all zeros a valid value.
unsafe impl bytemuck::Zeroable for Line {}
// SAFETY: as above; it is `Copy`, `'static` and `repr(C)`.
unsafe impl bytemuck::Pod for Line {}

/// The first bytes of a file, up to the end of its last tensor's data, owned and aligned.
struct AlignedBytes {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedBytes {
    /// `len` zero bytes, or the allocator's refusal (rather than an abort).
    fn zeroed(len: usize) -> Result<Self, TryReserveError> {
        let n = len.div_ceil(64);
        let mut lines = Vec::new();
        lines.try_reserve_exact(n)?;
        lines.resize(n, Line([0; 64]));
        Ok(AlignedBytes { lines, len })
    }

    fn as_mut_bytes(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.lines)[..self.len]
    }
}

impl Deref for AlignedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.lines)[..self.len]
    }
}

/// A parsed GGUF file: its metadata and tensor directory, and its tensor data in memory.
pub struct GgufFile {
    path: PathBuf,
    /// The file from its start to the end of the last tensor's data.
    bytes: AlignedBytes,
    /// The file's size when it was opened.
    file_len: u64,
    version: u32,
    metadata: Vec<(String, Value)>,
    metadata_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .finish()
    }
}

impl GgufFile {
    /// Reads and checks the file at `path`: its header first (at most [`MAX_HEADER_BYTES`]),
    /// then its tensor data, into memory.
    pub fn open(path: &Path) -> Result<Self, GgufError> {
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let mut head = Vec::new();
        (&mut file)
            .take(file_len.min(MAX_HEADER_BYTES))
            .read_to_end(&mut head)
            .map_err(io)?;
        let header = Parser::new(&head, file_len, path).header()?;
        let mut bytes =
            AlignedBytes::zeroed(header.data_end).map_err(|source| GgufError::OutOfMemory {
                path: path.to_path_buf(),
                bytes: header.data_end as u64,
                source,
            })?;
        let copied = head.len().min(header.data_end);
        let target = bytes.as_mut_bytes();
        target[..copied].copy_from_slice(&head[..copied]);
        drop(head);
        file.read_exact(&mut target[copied..]).map_err(|e| {
            io(std::io::Error::new(
                e.kind(),
                format!("{e} (the file changed while it was read: was it being replaced?)"),
            ))
        })?;
        Ok(Self::assemble(path.to_path_buf(), file_len, bytes, header))
    }

    /// Parses a GGUF image already in memory; `path` only names it in errors.
    pub fn from_bytes(path: impl Into<PathBuf>, image: Vec<u8>) -> Result<Self, GgufError> {
        let path = path.into();
        let file_len = image.len() as u64;
        let head = &image[..image.len().min(MAX_HEADER_BYTES as usize)];
        let header = Parser::new(head, file_len, &path).header()?;
        let mut bytes =
            AlignedBytes::zeroed(header.data_end).map_err(|source| GgufError::OutOfMemory {
                path: path.clone(),
                bytes: header.data_end as u64,
                source,
            })?;
        bytes
            .as_mut_bytes()
            .copy_from_slice(&image[..header.data_end]);
        Ok(Self::assemble(path, file_len, bytes, header))
    }

    fn assemble(path: PathBuf, file_len: u64, bytes: AlignedBytes, header: Header) -> Self {
        GgufFile {
            path,
            bytes,
            file_len,
            version: header.version,
            metadata: header.metadata,
            metadata_index: header.metadata_index,
            tensors: header.tensors,
            tensor_index: header.tensor_index,
            alignment: header.alignment,
            data_offset: header.data_offset,
        }
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The alignment of the data section and of every tensor's data.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Where the data section starts, from the start of the file.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The whole file's size in bytes, when it was opened.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Every metadata entry, in file order.
    pub fn metadata_entries(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.metadata.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The value of metadata key `key`, if present.
    pub fn metadata(&self, key: &str) -> Option<&Value> {
        self.metadata_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// The tensor directory, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor called `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The raw data of a tensor of this file (its blocks, row after row): exactly
    /// [`TensorInfo::n_bytes`] bytes. Empty for a `TensorInfo` that came from another file
    /// and does not fit this one.
    pub fn tensor_bytes(&self, tensor: &TensorInfo) -> &[u8] {
        self.bytes.get(tensor.range.clone()).unwrap_or_default()
    }

    /// `general.architecture` (`llama`, ...).
    pub fn architecture(&self) -> Result<&str, GgufError> {
        self.get_str("general.architecture")
    }

    fn value(&self, key: &str) -> Result<&Value, GgufError> {
        self.metadata(key).ok_or_else(|| GgufError::MissingKey {
            path: self.path.clone(),
            key: key.to_string(),
        })
    }

    fn wrong_type(&self, key: &str, expected: &'static str, found: &Value) -> GgufError {
        GgufError::WrongType {
            path: self.path.clone(),
            key: key.to_string(),
            expected,
            found: found.to_string(),
        }
    }

    /// An integer key converted to `T`: any integer type is accepted if the value fits.
    fn integer<T: TryFrom<i128>>(&self, key: &str, expected: &'static str) -> Result<T, GgufError> {
        let value = self.value(key)?;
        value
            .as_integer()
            .and_then(|v| T::try_from(v).ok())
            .ok_or_else(|| self.wrong_type(key, expected, value))
    }

    /// Wraps a getter so that a missing key gives `None` (other errors stay errors).
    fn optional<'a, T>(
        &'a self,
        key: &str,
        get: impl FnOnce(&'a Self) -> Result<T, GgufError>,
    ) -> Result<Option<T>, GgufError> {
        if self.metadata(key).is_some() {
            get(self).map(Some)
        } else {
            Ok(None)
        }
    }

    /// An integer key as `u32` (any integer type whose value fits is accepted).
    pub fn get_u32(&self, key: &str) -> Result<u32, GgufError> {
        self.integer(key, "an integer that fits u32")
    }

    /// An integer key as `u64` (any integer type whose value fits is accepted).
    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        self.integer(key, "an integer that fits u64")
    }

    /// An integer key as `i64` (any integer type whose value fits is accepted).
    pub fn get_i64(&self, key: &str) -> Result<i64, GgufError> {
        self.integer(key, "an integer that fits i64")
    }

    /// A float key as `f32` (an `f64` is narrowed).
    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        match self.value(key)? {
            Value::F32(v) => Ok(*v),
            Value::F64(v) => Ok(*v as f32),
            other => Err(self.wrong_type(key, "an f32", other)),
        }
    }

    /// A bool key.
    pub fn get_bool(&self, key: &str) -> Result<bool, GgufError> {
        match self.value(key)? {
            Value::Bool(v) => Ok(*v),
            other => Err(self.wrong_type(key, "a bool", other)),
        }
    }

    /// A string key.
    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        match self.value(key)? {
            Value::String(v) => Ok(v),
            other => Err(self.wrong_type(key, "a string", other)),
        }
    }

    /// An array key of any element type.
    pub fn get_array(&self, key: &str) -> Result<&Array, GgufError> {
        match self.value(key)? {
            Value::Array(v) => Ok(v),
            other => Err(self.wrong_type(key, "an array", other)),
        }
    }

    /// An array-of-strings key.
    pub fn get_str_array(&self, key: &str) -> Result<&[String], GgufError> {
        match self.value(key)? {
            Value::Array(Array::String(v)) => Ok(v),
            other => Err(self.wrong_type(key, "an array of strings", other)),
        }
    }

    /// An array-of-f32 key.
    pub fn get_f32_array(&self, key: &str) -> Result<&[f32], GgufError> {
        match self.value(key)? {
            Value::Array(Array::F32(v)) => Ok(v),
            other => Err(self.wrong_type(key, "an array of f32", other)),
        }
    }

    /// An array-of-i32 key.
    pub fn get_i32_array(&self, key: &str) -> Result<&[i32], GgufError> {
        match self.value(key)? {
            Value::Array(Array::I32(v)) => Ok(v),
            other => Err(self.wrong_type(key, "an array of i32", other)),
        }
    }

    /// [`GgufFile::get_u32`], `None` when the key is absent.
    pub fn get_u32_opt(&self, key: &str) -> Result<Option<u32>, GgufError> {
        self.optional(key, |f| f.get_u32(key))
    }

    /// [`GgufFile::get_f32`], `None` when the key is absent.
    pub fn get_f32_opt(&self, key: &str) -> Result<Option<f32>, GgufError> {
        self.optional(key, |f| f.get_f32(key))
    }

    /// [`GgufFile::get_bool`], `None` when the key is absent.
    pub fn get_bool_opt(&self, key: &str) -> Result<Option<bool>, GgufError> {
        self.optional(key, |f| f.get_bool(key))
    }

    /// [`GgufFile::get_str`], `None` when the key is absent.
    pub fn get_str_opt(&self, key: &str) -> Result<Option<&str>, GgufError> {
        self.optional(key, |f| f.get_str(key))
    }

    /// [`GgufFile::get_str_array`], `None` when the key is absent.
    pub fn get_str_array_opt(&self, key: &str) -> Result<Option<&[String]>, GgufError> {
        self.optional(key, |f| f.get_str_array(key))
    }

    /// [`GgufFile::get_f32_array`], `None` when the key is absent.
    pub fn get_f32_array_opt(&self, key: &str) -> Result<Option<&[f32]>, GgufError> {
        self.optional(key, |f| f.get_f32_array(key))
    }

    /// [`GgufFile::get_i32_array`], `None` when the key is absent.
    pub fn get_i32_array_opt(&self, key: &str) -> Result<Option<&[i32]>, GgufError> {
        self.optional(key, |f| f.get_i32_array(key))
    }
}

/// What [`Parser::header`] finds before the data section.
struct Header {
    version: u32,
    metadata: Vec<(String, Value)>,
    metadata_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
    /// Where the last tensor's data ends (0 without tensors): how much of the file is kept.
    data_end: usize,
}

/// A bounds-checked little-endian reader over the file's first bytes (its header, at most
/// [`MAX_HEADER_BYTES`]).
struct Parser<'a> {
    bytes: &'a [u8],
    /// The whole file's size: tensor data must lie inside it.
    file_len: u64,
    pos: usize,
    path: &'a Path,
}

impl<'a> Parser<'a> {
    fn new(bytes: &'a [u8], file_len: u64, path: &'a Path) -> Self {
        Parser {
            bytes,
            file_len,
            pos: 0,
            path,
        }
    }

    /// Whether the header runs on past the bytes read because it is larger than
    /// [`MAX_HEADER_BYTES`] (rather than because the file ends).
    fn past_header_limit(&self) -> bool {
        (self.bytes.len() as u64) < self.file_len
    }

    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    fn malformed(&self, offset: usize, what: &str, problem: String) -> GgufError {
        GgufError::Malformed {
            path: self.path.to_path_buf(),
            what: what.to_string(),
            offset: offset as u64,
            problem,
        }
    }

    fn truncated(&self, what: &str, needed: u64) -> GgufError {
        if self.past_header_limit() {
            return self.header_too_large(what);
        }
        GgufError::Truncated {
            path: self.path.to_path_buf(),
            what: what.to_string(),
            offset: self.pos as u64,
            needed,
            file_len: self.bytes.len() as u64,
        }
    }

    fn header_too_large(&self, what: &str) -> GgufError {
        self.malformed(
            self.pos,
            what,
            format!(
                "the header (metadata and tensor directory) goes on past its first \
                 {MAX_HEADER_BYTES} bytes, the most voxd reads"
            ),
        )
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(self.truncated(what, n));
        }
        // n fits in usize: it is at most the remaining length of a slice.
        let end = self.pos + n as usize;
        let bytes = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let bytes = self.take(N as u64, what)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A count of things that each take at least `min_size` bytes, at most `max`: refused
    /// (before anything is allocated for it) when the rest of the header could not hold
    /// them.
    fn count(&mut self, what: &str, min_size: u64, max: u64) -> Result<usize, GgufError> {
        let at = self.pos;
        let n = self.u64(what)?;
        if n > max {
            return Err(self.malformed(at, what, format!("{n} is more than the {max} allowed")));
        }
        let fits = n
            .checked_mul(min_size)
            .is_some_and(|bytes| bytes <= self.remaining());
        match usize::try_from(n) {
            Ok(n) if fits => Ok(n),
            _ => Err(self.malformed(
                at,
                what,
                format!(
                    "{n} does not fit in the {} bytes of header that follow (at least \
                     {min_size} bytes each){}",
                    self.remaining(),
                    if self.past_header_limit() {
                        format!("; voxd reads at most {MAX_HEADER_BYTES} bytes of header")
                    } else {
                        String::new()
                    }
                ),
            )),
        }
    }

    fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let len_at = self.pos;
        let len = self.u64(what)?;
        if len > self.remaining() && self.past_header_limit() {
            return Err(self.header_too_large(what));
        }
        if len > self.remaining() {
            return Err(self.malformed(
                len_at,
                what,
                format!(
                    "string length {len} runs past the end of the file ({} bytes remain)",
                    self.remaining()
                ),
            ));
        }
        let at = self.pos;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| {
            self.malformed(
                at,
                what,
                format!(
                    "not UTF-8 (invalid byte at {})",
                    at + e.utf8_error().valid_up_to()
                ),
            )
        })
    }

    fn value_type(&mut self, what: &str) -> Result<ValueType, GgufError> {
        let at = self.pos;
        let id = self.u32(what)?;
        ValueType::from_id(id).ok_or_else(|| {
            self.malformed(
                at,
                what,
                format!("unknown value type {id} (expected 0..=12)"),
            )
        })
    }

    fn value(&mut self, ty: ValueType, what: &str, depth: usize) -> Result<Value, GgufError> {
        Ok(match ty {
            ValueType::U8 => Value::U8(u8::from_le_bytes(self.array(what)?)),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array(what)?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(what)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(what)?)),
            ValueType::U32 => Value::U32(u32::from_le_bytes(self.array(what)?)),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(what)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(what)?)),
            ValueType::Bool => Value::Bool(self.bool(what)?),
            ValueType::String => Value::String(self.string(what)?),
            ValueType::Array => Value::Array(self.array_value(what, depth)?),
            ValueType::U64 => Value::U64(u64::from_le_bytes(self.array(what)?)),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(what)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(what)?)),
        })
    }

    fn bool(&mut self, what: &str) -> Result<bool, GgufError> {
        let at = self.pos;
        match self.array::<1>(what)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.malformed(at, what, format!("bool byte {b}, expected 0 or 1"))),
        }
    }

    /// Reads `n` fixed-size elements.
    fn elements<T, const N: usize>(
        &mut self,
        n: usize,
        what: &str,
        decode: fn([u8; N]) -> T,
    ) -> Result<Vec<T>, GgufError> {
        (0..n).map(|_| self.array(what).map(decode)).collect()
    }

    fn array_value(&mut self, what: &str, depth: usize) -> Result<Array, GgufError> {
        let at = self.pos;
        if depth >= MAX_ARRAY_DEPTH {
            return Err(self.malformed(
                at,
                what,
                format!("arrays nested deeper than {MAX_ARRAY_DEPTH} levels"),
            ));
        }
        let ty = self.value_type(what)?;
        let n = self.count(what, ty.min_size(), u64::MAX)?;
        Ok(match ty {
            ValueType::U8 => Array::U8(self.elements(n, what, u8::from_le_bytes)?),
            ValueType::I8 => Array::I8(self.elements(n, what, i8::from_le_bytes)?),
            ValueType::U16 => Array::U16(self.elements(n, what, u16::from_le_bytes)?),
            ValueType::I16 => Array::I16(self.elements(n, what, i16::from_le_bytes)?),
            ValueType::U32 => Array::U32(self.elements(n, what, u32::from_le_bytes)?),
            ValueType::I32 => Array::I32(self.elements(n, what, i32::from_le_bytes)?),
            ValueType::F32 => Array::F32(self.elements(n, what, f32::from_le_bytes)?),
            ValueType::U64 => Array::U64(self.elements(n, what, u64::from_le_bytes)?),
            ValueType::I64 => Array::I64(self.elements(n, what, i64::from_le_bytes)?),
            ValueType::F64 => Array::F64(self.elements(n, what, f64::from_le_bytes)?),
            ValueType::Bool => {
                Array::Bool((0..n).map(|_| self.bool(what)).collect::<Result<_, _>>()?)
            }
            ValueType::String => Array::String(
                (0..n)
                    .map(|_| self.string(what))
                    .collect::<Result<_, _>>()?,
            ),
            ValueType::Array => Array::Array(
                (0..n)
                    .map(|_| self.array_value(what, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    fn header(mut self) -> Result<Header, GgufError> {
        let magic = self.bytes.get(..4).unwrap_or(self.bytes);
        if magic != MAGIC {
            return Err(GgufError::NotGguf {
                path: self.path.to_path_buf(),
                found: magic.to_vec(),
            });
        }
        self.pos = 4;
        let version = self.u32("the version")?;
        let detail = match version {
            2 | 3 => None,
            1 => Some("version 1 (32-bit counts, before August 2023) is obsolete; convert the model again with a current llama.cpp"),
            0 => Some("no such version"),
            v if v.swap_bytes() <= 3 => Some("the file is big-endian; voxd reads little-endian files only"),
            _ => Some("a version from after this reader was written"),
        };
        if let Some(detail) = detail {
            return Err(GgufError::UnsupportedVersion {
                path: self.path.to_path_buf(),
                version,
                detail,
            });
        }
        // A tensor entry takes at least 24 bytes (empty name, no dims), a key/value pair 13
        // (empty key, type, one-byte value).
        let n_tensors = self.count("the tensor count", 24, MAX_TENSORS)?;
        let n_kv = self.count("the metadata count", 13, MAX_METADATA_ENTRIES)?;

        let mut metadata = Vec::with_capacity(n_kv);
        let mut metadata_index = HashMap::with_capacity(n_kv);
        for i in 0..n_kv {
            let key_at = self.pos;
            let key = self.string(&format!("metadata key #{i}"))?;
            let what = format!("the value of metadata key {key:?}");
            let ty = self.value_type(&what)?;
            let value = self.value(ty, &what, 0)?;
            if metadata_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(self.malformed(
                    key_at,
                    &format!("metadata key {key:?}"),
                    "the key appears twice".to_string(),
                ));
            }
            metadata.push((key, value));
        }

        let alignment = match metadata_index.get(ALIGNMENT_KEY).map(|&i| &metadata[i].1) {
            None => DEFAULT_ALIGNMENT,
            Some(Value::U32(a)) if a.is_power_of_two() => u64::from(*a),
            Some(other) => {
                return Err(GgufError::WrongType {
                    path: self.path.to_path_buf(),
                    key: ALIGNMENT_KEY.to_string(),
                    expected: "a u32 power of two",
                    found: other.to_string(),
                })
            }
        };

        let mut entries = Vec::with_capacity(n_tensors);
        for i in 0..n_tensors {
            entries.push(self.tensor_entry(i)?);
        }
        let data_offset = (self.pos as u64).next_multiple_of(alignment);
        let tensors = entries
            .into_iter()
            .map(|e| self.check_tensor(e, alignment, data_offset))
            .collect::<Result<Vec<_>, _>>()?;

        let mut tensor_index = HashMap::with_capacity(tensors.len());
        for (i, t) in tensors.iter().enumerate() {
            if tensor_index.insert(t.name.clone(), i).is_some() {
                return Err(self.tensor_error(&t.name, "the name appears twice".to_string()));
            }
        }
        self.check_overlaps(&tensors)?;
        let data_end = tensors.iter().map(|t| t.range.end).max().unwrap_or(0);

        Ok(Header {
            version,
            metadata,
            metadata_index,
            tensors,
            tensor_index,
            alignment,
            data_offset,
            data_end,
        })
    }

    fn tensor_error(&self, name: &str, problem: String) -> GgufError {
        GgufError::Tensor {
            path: self.path.to_path_buf(),
            name: name.to_string(),
            problem,
        }
    }

    /// Reads one tensor directory entry as stored.
    fn tensor_entry(&mut self, i: usize) -> Result<RawEntry, GgufError> {
        let name = self.string(&format!("the name of tensor #{i}"))?;
        let what = format!("tensor {name:?}");
        let n_dims_at = self.pos;
        let n_dims = self.u32(&what)?;
        if n_dims as usize > MAX_DIMS {
            return Err(self.malformed(
                n_dims_at,
                &what,
                format!("{n_dims} dimensions, expected at most {MAX_DIMS}"),
            ));
        }
        let dims = (0..n_dims)
            .map(|_| self.u64(&what))
            .collect::<Result<Vec<_>, _>>()?;
        let type_at = self.pos;
        let type_id = self.u32(&what)?;
        let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| {
            self.malformed(
                type_at,
                &what,
                format!("unknown ggml type {type_id} (ggml defines 0-3, 6-30, 34, 35, 39-41)"),
            )
        })?;
        let offset = self.u64(&what)?;
        Ok(RawEntry {
            name,
            dims,
            ggml_type,
            offset,
        })
    }

    /// Checks an entry's size, alignment and place in the file.
    fn check_tensor(
        &self,
        entry: RawEntry,
        alignment: u64,
        data_offset: u64,
    ) -> Result<TensorInfo, GgufError> {
        let RawEntry {
            name,
            dims,
            ggml_type,
            offset,
        } = entry;
        let fail = |problem: String| Err(self.tensor_error(&name, problem));
        // ggml counts elements in i64. The rows are counted too: with a row length of 0 the
        // element count is 0 whatever the other dims, which `n_rows` multiplies.
        let product = |dims: &[u64]| {
            dims.iter()
                .try_fold(1u64, |n, &d| n.checked_mul(d))
                .filter(|&n| n <= i64::MAX as u64)
        };
        let (Some(n_elements), Some(_)) = (product(&dims), product(dims.get(1..).unwrap_or(&[])))
        else {
            return fail(format!(
                "dims {dims:?} hold more than 2^63 elements or rows"
            ));
        };
        let row_len = dims.first().copied().unwrap_or(1);
        if !row_len.is_multiple_of(ggml_type.block_size()) {
            return fail(format!(
                "rows of {row_len} values are not whole blocks of {ggml_type} ({} values each)",
                ggml_type.block_size()
            ));
        }
        // What `row_bytes` computes, even for an empty tensor.
        if ggml_type.bytes_for(row_len).is_none() {
            return fail(format!(
                "rows of {row_len} values of {ggml_type} overflow a 64-bit size"
            ));
        }
        let Some(n_bytes) = ggml_type.bytes_for(n_elements) else {
            return fail(format!(
                "dims {dims:?} of {ggml_type} overflow a 64-bit size"
            ));
        };
        if !offset.is_multiple_of(alignment) {
            return fail(format!(
                "data offset {offset} is not a multiple of the alignment {alignment}"
            ));
        }
        let file_len = self.file_len;
        let start = data_offset.checked_add(offset);
        let end = start.and_then(|s| s.checked_add(n_bytes));
        let in_memory = |at: Option<u64>| at.filter(|&at| at <= file_len).map(usize::try_from);
        match (in_memory(start), in_memory(end)) {
            (Some(Ok(start)), Some(Ok(end))) => Ok(TensorInfo {
                name,
                dims,
                ggml_type,
                offset,
                n_bytes,
                range: start..end,
            }),
            _ => fail(format!(
                "{n_bytes} bytes of data at offset {offset} of the data section (byte {} of \
                 the file) run past its end at byte {file_len}",
                data_offset.saturating_add(offset)
            )),
        }
    }

    /// Two tensors must not share bytes.
    fn check_overlaps(&self, tensors: &[TensorInfo]) -> Result<(), GgufError> {
        let mut by_start: Vec<&TensorInfo> = tensors.iter().filter(|t| t.n_bytes > 0).collect();
        by_start.sort_by_key(|t| t.range.start);
        for pair in by_start.windows(2) {
            if pair[1].range.start < pair[0].range.end {
                return Err(self.tensor_error(
                    &pair[1].name,
                    format!(
                        "its data (offset {}) overlaps the data of tensor {:?} (offset {}, {} bytes)",
                        pair[1].offset, pair[0].name, pair[0].offset, pair[0].n_bytes
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A tensor directory entry as read, before it is checked against the file.
struct RawEntry {
    name: String,
    dims: Vec<u64>,
    ggml_type: GgmlType,
    offset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::test_gguf::{GgufWriter, TestTensor};

    fn parse(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        GgufFile::from_bytes("test.gguf", bytes)
    }

    /// One key of every value type, nested arrays included.
    fn every_value_type() -> Vec<(&'static str, Value)> {
        vec![
            ("t.u8", Value::U8(200)),
            ("t.i8", Value::I8(-100)),
            ("t.u16", Value::U16(60_000)),
            ("t.i16", Value::I16(-30_000)),
            ("t.u32", Value::U32(4_000_000_000)),
            ("t.i32", Value::I32(-2_000_000_000)),
            ("t.f32", Value::F32(1.5e-5)),
            ("t.bool", Value::Bool(true)),
            ("t.string", Value::String("héllo ▁ <|im_start|>".into())),
            ("t.u64", Value::U64(u64::MAX)),
            ("t.i64", Value::I64(i64::MIN)),
            ("t.f64", Value::F64(-2.5e300)),
            ("a.u8", Value::Array(Array::U8(vec![0, 255]))),
            ("a.i8", Value::Array(Array::I8(vec![-128, 127]))),
            ("a.u16", Value::Array(Array::U16(vec![1, 65535]))),
            ("a.i16", Value::Array(Array::I16(vec![-1, 2]))),
            ("a.u32", Value::Array(Array::U32(vec![7]))),
            ("a.i32", Value::Array(Array::I32(vec![1, 3, 6]))),
            ("a.f32", Value::Array(Array::F32(vec![-0.5, 0.25]))),
            ("a.bool", Value::Array(Array::Bool(vec![true, false]))),
            (
                "a.string",
                Value::Array(Array::String(vec!["Ġ t".into(), "".into(), "日本".into()])),
            ),
            ("a.u64", Value::Array(Array::U64(vec![u64::MAX, 0]))),
            ("a.i64", Value::Array(Array::I64(vec![-5]))),
            ("a.f64", Value::Array(Array::F64(vec![1e-300]))),
            ("a.empty", Value::Array(Array::U32(vec![]))),
            (
                "a.nested",
                Value::Array(Array::Array(vec![
                    Array::String(vec!["x".into()]),
                    Array::Array(vec![Array::I16(vec![-7, 8])]),
                    Array::F32(vec![]),
                ])),
            ),
        ]
    }

    fn small_tensors() -> Vec<TestTensor> {
        vec![
            TestTensor::new("norm.weight", GgmlType::F32, &[4]),
            TestTensor::new("blk.0.w", GgmlType::Q4_1, &[64, 3]),
            TestTensor::new("emb", GgmlType::Q8_0, &[32, 2, 1]),
            TestTensor::new("half", GgmlType::F16, &[3, 5]),
        ]
    }

    #[test]
    fn every_value_type_round_trips_in_v2_and_v3() {
        for version in [2, 3] {
            let mut w = GgufWriter::new(version);
            for (k, v) in every_value_type() {
                w.kv(k, v);
            }
            let file = parse(w.build()).unwrap();
            assert_eq!(file.version(), version);
            for (k, v) in every_value_type() {
                assert_eq!(file.metadata(k), Some(&v), "{k} in v{version}");
            }
            let keys: Vec<&str> = file.metadata_entries().map(|(k, _)| k).collect();
            let expected: Vec<&str> = every_value_type().iter().map(|(k, _)| *k).collect();
            assert_eq!(keys, expected, "file order");
        }
    }

    #[test]
    fn typed_getters_convert_or_name_the_key_and_type() {
        let mut w = GgufWriter::new(3);
        for (k, v) in every_value_type() {
            w.kv(k, v);
        }
        let file = parse(w.build()).unwrap();
        assert_eq!(file.get_u32("t.u32").unwrap(), 4_000_000_000);
        assert_eq!(file.get_u32("t.u8").unwrap(), 200);
        assert_eq!(file.get_i64("t.i32").unwrap(), -2_000_000_000);
        assert_eq!(file.get_u64("t.u64").unwrap(), u64::MAX);
        assert_eq!(file.get_f32("t.f32").unwrap(), 1.5e-5);
        assert!(file.get_bool("t.bool").unwrap());
        assert_eq!(file.get_str("t.string").unwrap(), "héllo ▁ <|im_start|>");
        assert_eq!(file.get_str_array("a.string").unwrap()[2], "日本");
        assert_eq!(file.get_f32_array("a.f32").unwrap(), &[-0.5, 0.25]);
        assert_eq!(file.get_i32_array("a.i32").unwrap(), &[1, 3, 6]);
        assert_eq!(file.get_array("a.nested").unwrap().len(), 3);
        assert_eq!(file.get_u32_opt("absent").unwrap(), None);
        assert_eq!(
            file.get_str_opt("t.string").unwrap(),
            Some("héllo ▁ <|im_start|>")
        );

        let err = file.get_u32("t.i32").unwrap_err().to_string();
        assert!(
            err.contains("test.gguf")
                && err.contains("\"t.i32\"")
                && err.contains("-2000000000")
                && err.contains("fits u32"),
            "{err}"
        );
        let err = file.get_str("a.u8").unwrap_err().to_string();
        assert!(
            err.contains("array of 2 u8") && err.contains("a string"),
            "{err}"
        );
        let err = file.get_u32("nope").unwrap_err().to_string();
        assert!(err.contains("\"nope\" is missing"), "{err}");
        let err = file.get_u32_opt("t.string").unwrap_err().to_string();
        assert!(err.contains("the string"), "{err}");
        let err = file.architecture().unwrap_err().to_string();
        assert!(err.contains("general.architecture"), "{err}");
    }

    #[test]
    fn tensors_are_found_with_their_data() {
        let mut w = GgufWriter::new(3);
        w.kv("general.architecture", Value::String("llama".into()));
        for t in small_tensors() {
            w.tensor(t);
        }
        let bytes = w.build();
        let file = parse(bytes.clone()).unwrap();
        assert_eq!(file.architecture().unwrap(), "llama");
        assert_eq!(file.alignment(), 32);
        assert_eq!(file.data_offset() % 32, 0);
        let names: Vec<&str> = file.tensors().iter().map(|t| t.name()).collect();
        assert_eq!(names, ["norm.weight", "blk.0.w", "emb", "half"]);
        for expected in small_tensors() {
            let t = file.tensor(&expected.name).unwrap();
            assert_eq!(t.dims(), expected.dims.as_slice());
            assert_eq!(t.ggml_type(), expected.ggml_type);
            assert_eq!(
                file.tensor_bytes(t),
                expected.data.as_slice(),
                "{}",
                t.name()
            );
            assert_eq!(t.n_bytes(), t.n_rows() * t.row_bytes());
            assert_eq!(t.offset() % 32, 0);
        }
        let q = file.tensor("blk.0.w").unwrap();
        assert_eq!((q.row_len(), q.n_rows(), q.row_bytes()), (64, 3, 40));
        assert_eq!(q.shape(), [3, 64]);
        assert_eq!(q.n_elements(), 192);
        assert_eq!(q.file_offset(), file.data_offset() + q.offset());
        assert!(file.tensor("missing").is_none());
    }

    #[test]
    fn alignment_comes_from_the_metadata() {
        let mut w = GgufWriter::new(3);
        w.alignment(64);
        for t in small_tensors() {
            w.tensor(t);
        }
        let file = parse(w.build()).unwrap();
        assert_eq!(file.alignment(), 64);
        assert_eq!(file.data_offset() % 64, 0);
        assert!(file.tensors().iter().all(|t| t.offset() % 64 == 0));

        for bad in [Value::U32(0), Value::U32(48), Value::U64(32)] {
            let mut w = GgufWriter::new(3);
            w.kv(ALIGNMENT_KEY, bad.clone());
            let err = parse(w.build()).unwrap_err().to_string();
            assert!(
                err.contains("general.alignment") && err.contains("power of two"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut w = GgufWriter::new(3);
        for (k, v) in every_value_type() {
            w.kv(k, v);
        }
        for t in small_tensors() {
            w.tensor(t);
        }
        let bytes = w.build();
        assert!(parse(bytes.clone()).is_ok());
        for len in 0..bytes.len() {
            let result = parse(bytes[..len].to_vec());
            assert!(result.is_err(), "a prefix of {len} bytes parsed");
        }
        let err = parse(bytes[..30].to_vec()).unwrap_err().to_string();
        assert!(
            err.contains("test.gguf") && err.contains("tensor count"),
            "{err}"
        );
        let err = parse(bytes[..bytes.len() - 1].to_vec())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"half\"") && err.contains("run past its end"),
            "{err}"
        );
    }

    #[test]
    fn versions_other_than_2_and_3_are_refused() {
        let mut bytes = GgufWriter::new(3).build();
        for (version, expect) in [
            (1u32, "obsolete"),
            (4, "after this reader"),
            (3u32.swap_bytes(), "big-endian"),
        ] {
            bytes[4..8].copy_from_slice(&version.to_le_bytes());
            let err = parse(bytes.clone()).unwrap_err().to_string();
            assert!(
                err.contains("not supported") && err.contains(expect),
                "{err}"
            );
        }
        let err = parse(b"GGML\x03\0\0\0".to_vec()).unwrap_err().to_string();
        assert!(err.contains("not a GGUF file"), "{err}");
    }

    /// The bytes of a file with one tensor, `patch` applied to its directory entry (the bytes
    /// after the name: n_dims, dims, type, offset).
    fn with_entry(patch: impl FnOnce(&mut Vec<u8>) + 'static) -> Result<GgufFile, GgufError> {
        let mut w = GgufWriter::new(3);
        w.tensor(TestTensor::new("w", GgmlType::F32, &[8, 2]));
        w.patch_entry(0, patch);
        parse(w.build())
    }

    fn entry_error(patch: impl FnOnce(&mut Vec<u8>) + 'static) -> String {
        with_entry(patch).unwrap_err().to_string()
    }

    #[test]
    fn bad_tensor_entries_are_refused_with_the_tensor_name() {
        // Entry layout: u32 n_dims (0..4), u64 dims (4..20), u32 type (20..24), u64 offset.
        let err = entry_error(|e| e[20..24].copy_from_slice(&4u32.to_le_bytes()));
        assert!(
            err.contains("\"w\"") && err.contains("unknown ggml type 4"),
            "{err}"
        );
        let err = entry_error(|e| e[20..24].copy_from_slice(&99u32.to_le_bytes()));
        assert!(err.contains("unknown ggml type 99"), "{err}");
        let err = entry_error(|e| e[24..32].copy_from_slice(&4u64.to_le_bytes()));
        assert!(err.contains("not a multiple of the alignment 32"), "{err}");
        let err = entry_error(|e| e[24..32].copy_from_slice(&(1u64 << 40).to_le_bytes()));
        assert!(err.contains("run past its end"), "{err}");
        let err =
            entry_error(|e| e[24..32].copy_from_slice(&u64::MAX.wrapping_sub(31).to_le_bytes()));
        assert!(err.contains("run past its end"), "{err}");
        let err = entry_error(|e| {
            e[4..12].copy_from_slice(&(1u64 << 40).to_le_bytes());
            e[12..20].copy_from_slice(&(1u64 << 40).to_le_bytes());
        });
        assert!(err.contains("more than 2^63 elements"), "{err}");
        // Found by the gguf_header fuzz target: an empty tensor (a row length of 0) whose
        // other dims multiply past 2^64 (`n_rows`), or whose row length overflows its size in
        // bytes (`row_bytes`).
        let err = entry_error(|e| {
            e[0..4].copy_from_slice(&3u32.to_le_bytes());
            e[4..12].copy_from_slice(&0u64.to_le_bytes());
            e[12..20].copy_from_slice(&(1u64 << 40).to_le_bytes());
            e.splice(20..20, (1u64 << 40).to_le_bytes());
        });
        assert!(err.contains("more than 2^63 elements or rows"), "{err}");
        let err = entry_error(|e| {
            e[4..12].copy_from_slice(&(1u64 << 62).to_le_bytes());
            e[12..20].copy_from_slice(&0u64.to_le_bytes());
        });
        assert!(
            err.contains("rows of 4611686018427387904 values of F32 overflow"),
            "{err}"
        );
        let err = entry_error(|e| e[4..12].copy_from_slice(&(1u64 << 61).to_le_bytes()));
        assert!(
            err.contains("overflow") || err.contains("run past"),
            "{err}"
        );
        let err = entry_error(|e| e[0..4].copy_from_slice(&5u32.to_le_bytes()));
        assert!(err.contains("5 dimensions, expected at most 4"), "{err}");
        // Q4_0 rows must be whole blocks of 32: 8 values are not.
        let err = entry_error(|e| e[20..24].copy_from_slice(&2u32.to_le_bytes()));
        assert!(err.contains("not whole blocks of Q4_0"), "{err}");
    }

    #[test]
    fn duplicates_and_overlaps_are_refused() {
        let mut w = GgufWriter::new(3);
        w.tensor(TestTensor::new("same", GgmlType::F32, &[8]));
        w.tensor(TestTensor::new("same", GgmlType::F32, &[8]));
        let err = parse(w.build()).unwrap_err().to_string();
        assert!(
            err.contains("\"same\"") && err.contains("appears twice"),
            "{err}"
        );

        let mut w = GgufWriter::new(3);
        w.kv("k", Value::U8(1));
        w.kv("k", Value::U8(2));
        let err = parse(w.build()).unwrap_err().to_string();
        assert!(
            err.contains("\"k\"") && err.contains("appears twice"),
            "{err}"
        );

        let mut w = GgufWriter::new(3);
        w.tensor(TestTensor::new("a", GgmlType::F32, &[16]));
        w.tensor(TestTensor::new("b", GgmlType::F32, &[16]));
        // Point b at a's data (entry: n_dims 0..4, dims 4..12, type 12..16, offset 16..24).
        w.patch_entry(1, |e| e[16..24].copy_from_slice(&0u64.to_le_bytes()));
        let err = parse(w.build()).unwrap_err().to_string();
        assert!(err.contains("overlaps the data of tensor \"a\""), "{err}");
    }

    #[test]
    fn bad_metadata_is_refused_with_its_place() {
        // Header: magic, version, tensor count, kv count = 24 bytes; then the first key.
        let mut w = GgufWriter::new(3);
        w.kv("flag", Value::Bool(true));
        let good = w.build();
        let value_type_at = 24 + 8 + 4;

        let mut bytes = good.clone();
        bytes[value_type_at..value_type_at + 4].copy_from_slice(&13u32.to_le_bytes());
        let err = parse(bytes).unwrap_err().to_string();
        assert!(
            err.contains("\"flag\"")
                && err.contains("unknown value type 13")
                && err.contains(&format!("byte {value_type_at}")),
            "{err}"
        );

        let mut bytes = good.clone();
        bytes[value_type_at + 4] = 2;
        let err = parse(bytes).unwrap_err().to_string();
        assert!(err.contains("bool byte 2"), "{err}");

        // A key length far beyond the file.
        let mut bytes = good.clone();
        bytes[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        let err = parse(bytes).unwrap_err().to_string();
        assert!(
            err.contains("metadata key #0") && err.contains("runs past the end"),
            "{err}"
        );

        // Counts that the file cannot hold are refused before anything is allocated.
        let mut bytes = good.clone();
        bytes[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        let err = parse(bytes).unwrap_err().to_string();
        assert!(err.contains("the metadata count"), "{err}");
        let mut bytes = good.clone();
        bytes[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes());
        let err = parse(bytes).unwrap_err().to_string();
        assert!(err.contains("the tensor count"), "{err}");

        let mut w = GgufWriter::new(3);
        w.kv("big", Value::Array(Array::U64(vec![1, 2])));
        let mut bytes = w.build();
        let count_at = 24 + 8 + 3 + 4 + 4;
        bytes[count_at..count_at + 8].copy_from_slice(&(u64::MAX / 4).to_le_bytes());
        let err = parse(bytes).unwrap_err().to_string();
        assert!(
            err.contains("\"big\"") && err.contains("does not fit"),
            "{err}"
        );

        let mut w = GgufWriter::new(3);
        w.kv("text", Value::String("ok".into()));
        let mut bytes = w.build();
        let last = bytes.len() - 1;
        bytes[last] = 0xff;
        let err = parse(bytes).unwrap_err().to_string();
        assert!(
            err.contains("\"text\"") && err.contains("not UTF-8"),
            "{err}"
        );
    }

    /// A sparse file: a real header whose counts claim what the file's (apparent) size could
    /// hold, and 64 GiB of holes after it that cost no disk.
    fn sparse_file(dir: &Path, header: &[u8]) -> PathBuf {
        let path = dir.join("sparse.gguf");
        std::fs::write(&path, header).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(64 << 30).unwrap();
        path
    }

    #[test]
    fn huge_counts_in_a_sparse_file_are_refused_before_any_reservation() {
        let dir = tempfile::tempdir().unwrap();
        // 13 bytes per metadata entry fit 5.3 billion entries into 64 GiB; reserving them
        // up front took 56 bytes each, 296 GB.
        let mut header = GgufWriter::new(3).build();
        header[16..24].copy_from_slice(&((64u64 << 30) / 13).to_le_bytes());
        let err = GgufFile::open(&sparse_file(dir.path(), &header)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("sparse.gguf") && text.contains("the metadata count"),
            "{text}"
        );
        // The same for tensors (24 bytes each) and for an array's length.
        let mut header = GgufWriter::new(3).build();
        header[8..16].copy_from_slice(&((64u64 << 30) / 24).to_le_bytes());
        let text = GgufFile::open(&sparse_file(dir.path(), &header))
            .unwrap_err()
            .to_string();
        assert!(text.contains("the tensor count"), "{text}");
        let mut w = GgufWriter::new(3);
        w.kv("big", Value::Array(Array::U8(vec![1])));
        let mut header = w.build();
        let count_at = 24 + 8 + 3 + 4 + 4;
        header[count_at..count_at + 8].copy_from_slice(&(60u64 << 30).to_le_bytes());
        let text = GgufFile::open(&sparse_file(dir.path(), &header))
            .unwrap_err()
            .to_string();
        assert!(text.contains("\"big\""), "{text}");
    }

    #[test]
    fn deeply_nested_arrays_are_refused() {
        let mut nested = Array::U8(vec![1]);
        for _ in 0..MAX_ARRAY_DEPTH {
            nested = Array::Array(vec![nested]);
        }
        let mut w = GgufWriter::new(3);
        w.kv("deep", Value::Array(nested));
        let err = parse(w.build()).unwrap_err().to_string();
        assert!(err.contains("nested deeper"), "{err}");
    }

    #[test]
    fn ggml_type_table_is_consistent() {
        let all: Vec<GgmlType> = GgmlType::all().collect();
        assert_eq!(all.len(), GGML_TYPES.len());
        for (i, t) in all.iter().enumerate() {
            assert_eq!(GgmlType::from_id(t.id()), Some(*t));
            assert_eq!(GGML_TYPES[i].0, *t, "each variant has its own row");
            assert!(t.block_size() >= 1 && t.type_size() >= 1);
        }
        let supported: Vec<&str> = all
            .iter()
            .filter(|t| t.is_supported())
            .map(|t| t.name())
            .collect();
        assert_eq!(
            supported,
            ["F32", "F16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q6_K"]
        );
        // The kernels' own description of each supported type agrees with ggml's table.
        for ty in QuantType::ALL {
            let t = GgmlType::from_id(ty.ggml_id()).unwrap();
            assert_eq!(t.name(), ty.name());
            assert_eq!(t.block_size(), ty.block_len() as u64, "{t}");
            assert_eq!(t.type_size(), ty.block_bytes() as u64, "{t}");
        }
        assert_eq!(GgmlType::Q4_K.bytes_for(512), Some(288));
        assert_eq!(GgmlType::Q4_K.bytes_for(100), None);
        assert_eq!(GgmlType::from_id(4), None);
    }
}
