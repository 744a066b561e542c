//! Grammar errors, and the source files they point into.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// A place in a grammar file, shown as `path:line:column` (both from 1, columns in
/// characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GrammarError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: {message}")]
    Invalid { location: Location, message: String },
    #[error("the grammar has no intents")]
    NoIntents,
}

/// The text of the grammar files, kept to turn byte offsets into lines and columns.
#[derive(Debug, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

#[derive(Debug)]
struct SourceFile {
    path: PathBuf,
    text: String,
}

/// Index of a file in [`Sources`].
pub type FileId = usize;

impl Sources {
    pub fn add(&mut self, path: PathBuf, text: String) -> FileId {
        self.files.push(SourceFile { path, text });
        self.files.len() - 1
    }

    pub fn text(&self, file: FileId) -> &str {
        &self.files[file].text
    }

    pub fn path(&self, file: FileId) -> &PathBuf {
        &self.files[file].path
    }

    /// The location of a byte offset of a file.
    pub fn locate(&self, file: FileId, offset: usize) -> Location {
        let source = &self.files[file];
        let mut offset = offset.min(source.text.len());
        while !source.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &source.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            path: source.path.clone(),
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }

    /// The location of byte `index` of a string value whose TOML source is at `span`. When
    /// the source spells the value differently (escapes, multi-line strings) the location is
    /// the start of the string.
    pub fn locate_in_string(
        &self,
        file: FileId,
        span: &Range<usize>,
        value: &str,
        index: usize,
    ) -> Location {
        let raw = self.files[file].text.get(span.clone()).unwrap_or("");
        let quote = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            3
        } else {
            1
        };
        let inner = raw.get(quote..raw.len().saturating_sub(quote));
        let offset = match inner {
            Some(inner) if inner == value => span.start + quote + index,
            _ => span.start,
        };
        self.locate(file, offset)
    }

    pub fn error(&self, file: FileId, offset: usize, message: impl Into<String>) -> GrammarError {
        GrammarError::Invalid {
            location: self.locate(file, offset),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_count_characters() {
        let mut sources = Sources::default();
        let file = sources.add("g.toml".into(), "a = 1\nbé = \"x(y\"\n".into());
        assert_eq!(sources.locate(file, 0).to_string(), "g.toml:1:1");
        let text = sources.text(file).to_string();
        let start = text.find('"').unwrap();
        let span = start..start + 5;
        let location = sources.locate_in_string(file, &span, "x(y", 1);
        assert_eq!((location.line, location.column), (2, 8));
    }
}
