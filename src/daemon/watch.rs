//! Noticing edits to the config and grammar files, by polling their size and modification
//! time. Polling is portable (Linux, macOS), needs no extra threads, and sees the way
//! editors save (write a new file, rename it over the old one) like any other change.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What a file looked like at the last look; None when it could not be read (missing).
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Watches a set of files.
#[derive(Debug, Default)]
pub struct FileWatch {
    files: Vec<(PathBuf, Stamp)>,
    /// A change was seen at the last look; it is reported once the files hold still.
    settling: bool,
}

impl FileWatch {
    /// Watches `files` as they are now.
    pub fn new<'a>(files: impl IntoIterator<Item = &'a Path>) -> FileWatch {
        FileWatch {
            files: files
                .into_iter()
                .map(|p| (p.to_path_buf(), stamp(p)))
                .collect(),
            settling: false,
        }
    }

    /// Looks again (call it periodically): true once files that changed have stayed the
    /// same for one more look, so a save in several steps is read once, complete.
    pub fn poll(&mut self) -> bool {
        let mut changed = false;
        for (path, seen) in &mut self.files {
            let now = stamp(path);
            if now != *seen {
                *seen = now;
                changed = true;
            }
        }
        if changed {
            self.settling = true;
            return false;
        }
        std::mem::take(&mut self.settling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_reported_once_the_file_holds_still() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grammar.toml");
        std::fs::write(&path, "a").unwrap();
        let mut watch = FileWatch::new([path.as_path()]);
        assert!(!watch.poll());
        std::fs::write(&path, "ab").unwrap();
        assert!(!watch.poll(), "still settling");
        assert!(watch.poll());
        assert!(!watch.poll());
        std::fs::remove_file(&path).unwrap();
        assert!(!watch.poll());
        assert!(watch.poll(), "a removed file is a change too");
    }
}
