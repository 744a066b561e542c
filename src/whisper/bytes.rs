//! A bounds-checked little-endian reader over a model file's bytes, shared by the
//! CTranslate2 and ggml parsers: every read says what it is for, so a truncated or foreign
//! file is an error naming the file, the field and the offset.

use std::path::Path;

use super::weights::LoadError;

/// Reads a model file into memory. Read, not memory-mapped: a file replaced or cut short
/// while it is open would end the process with SIGBUS on the first page past its new end.
pub fn read_file(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub struct ByteReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> ByteReader<'a> {
    pub fn new(bytes: &'a [u8], path: &'a Path) -> Self {
        ByteReader {
            bytes,
            pos: 0,
            path,
        }
    }

    pub fn path(&self) -> &'a Path {
        self.path
    }

    /// The offset of the next read.
    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// A format error in this file.
    pub fn error(&self, message: String) -> LoadError {
        LoadError::Format {
            path: self.path.to_path_buf(),
            message,
        }
    }

    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], LoadError> {
        match self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()) {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.error(format!(
                "file is truncated: {what} needs {n} bytes at offset {}, but the file has {} bytes",
                self.pos,
                self.bytes.len()
            ))),
        }
    }

    pub fn u8(&mut self, what: &str) -> Result<u8, LoadError> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u16(&mut self, what: &str) -> Result<u16, LoadError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self, what: &str) -> Result<u32, LoadError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i32(&mut self, what: &str) -> Result<i32, LoadError> {
        let b = self.take(4, what)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}
