//! A bounds-checked little-endian reader of a model file, front to back, shared by the
//! CTranslate2 and ggml parsers: every read says what it is for, so a truncated or foreign
//! file is an error naming the file, the field and the offset.
//!
//! Tensor data is read straight into the vector of its type that the weights then keep
//! (see [`super::weights::TensorData`]): a load never holds the file's bytes beside the
//! weights made from them, only the weights (at most one tensor's conversion more). Read,
//! not memory-mapped: a file replaced or cut short while it is open would end the process
//! with SIGBUS on the first page past its new end, and everything is read once at opening.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use half::f16;

use super::weights::{DType, LoadError, TensorData};

/// Opens a model file for [`ByteReader`]: the buffered file and its length.
pub fn open_file(path: &Path) -> Result<(BufReader<File>, usize), LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let len = usize::try_from(len).map_err(|_| LoadError::Format {
        path: path.to_path_buf(),
        message: format!("the file has {len} bytes, more than this machine can address"),
    })?;
    Ok((BufReader::with_capacity(1 << 16, file), len))
}

pub struct ByteReader<'a, R> {
    input: R,
    /// The input's length in bytes, known before reading it.
    len: usize,
    pos: usize,
    path: &'a Path,
}

impl<'a, R: Read> ByteReader<'a, R> {
    /// Reads `input`, `len` bytes long; `path` names it in errors.
    pub fn new(input: R, len: usize, path: &'a Path) -> Self {
        ByteReader {
            input,
            len,
            pos: 0,
            path,
        }
    }

    pub fn path(&self) -> &'a Path {
        self.path
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.len
    }

    /// A format error in this file.
    pub fn error(&self, message: String) -> LoadError {
        LoadError::Format {
            path: self.path.to_path_buf(),
            message,
        }
    }

    /// Checks that `n` more bytes are there before anything is allocated for them (a
    /// foreign file's sizes are not to be trusted), and moves past them.
    fn claim(&mut self, n: usize, what: &str) -> Result<(), LoadError> {
        match self.pos.checked_add(n).filter(|&e| e <= self.len) {
            Some(end) => {
                self.pos = end;
                Ok(())
            }
            None => Err(self.error(format!(
                "file is truncated: {what} needs {n} bytes at offset {}, but the file has {} bytes",
                self.pos, self.len
            ))),
        }
    }

    /// Fills `buf` from the input (its bytes already claimed). Fails if the file shrank
    /// since its length was read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), LoadError> {
        self.input.read_exact(buf).map_err(|source| LoadError::Io {
            path: self.path.to_path_buf(),
            source,
        })
    }

    pub fn take(&mut self, n: usize, what: &str) -> Result<Vec<u8>, LoadError> {
        self.claim(n, what)?;
        let mut out = vec![0; n];
        self.fill(&mut out)?;
        Ok(out)
    }

    /// Moves past `n` bytes without keeping them.
    pub fn skip(&mut self, n: usize, what: &str) -> Result<(), LoadError> {
        self.claim(n, what)?;
        let skipped = std::io::copy(&mut (&mut self.input).take(n as u64), &mut std::io::sink())
            .map_err(|source| LoadError::Io {
                path: self.path.to_path_buf(),
                source,
            })?;
        if skipped != n as u64 {
            return Err(self.error(format!(
                "the file shrank while it was read: {what} ends past its end"
            )));
        }
        Ok(())
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], LoadError> {
        self.claim(N, what)?;
        let mut out = [0; N];
        self.fill(&mut out)?;
        Ok(out)
    }

    pub fn u8(&mut self, what: &str) -> Result<u8, LoadError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u16(&mut self, what: &str) -> Result<u16, LoadError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &str) -> Result<u32, LoadError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn i32(&mut self, what: &str) -> Result<i32, LoadError> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    /// `n` little-endian values of a plain type, read into their vector in place.
    fn values<T: bytemuck::Pod>(
        &mut self,
        n: usize,
        what: &str,
        from_le: impl Fn(T) -> T,
    ) -> Result<Vec<T>, LoadError> {
        let bytes = n
            .checked_mul(std::mem::size_of::<T>())
            .ok_or_else(|| self.error(format!("{what}: {n} values overflow")))?;
        self.claim(bytes, what)?;
        let mut out = vec![T::zeroed(); n];
        self.fill(bytemuck::cast_slice_mut(&mut out))?;
        if cfg!(target_endian = "big") {
            out.iter_mut().for_each(|v| *v = from_le(*v));
        }
        Ok(out)
    }

    pub fn f32s(&mut self, n: usize, what: &str) -> Result<Vec<f32>, LoadError> {
        self.values(n, what, |v: f32| f32::from_bits(u32::from_le(v.to_bits())))
    }

    /// `n` signed bytes (CTranslate2's int8 weights).
    pub fn i8s(&mut self, n: usize, what: &str) -> Result<Vec<i8>, LoadError> {
        self.values(n, what, |v: i8| v)
    }

    /// A tensor's `bytes` of data, stored as `dtype`.
    pub fn tensor_data(
        &mut self,
        dtype: DType,
        bytes: usize,
        what: &str,
    ) -> Result<TensorData, LoadError> {
        Ok(match dtype {
            DType::F32 => TensorData::F32(self.f32s(bytes / 4, what)?),
            DType::F16 => TensorData::F16(self.values(bytes / 2, what, |v: f16| {
                f16::from_bits(u16::from_le(v.to_bits()))
            })?),
            DType::Blocks(ty) => TensorData::Blocks {
                ty,
                data: self.take(bytes, what)?,
            },
        })
    }
}
