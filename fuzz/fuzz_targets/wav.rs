//! WAV files: `voxd::audio::read_wav`, the reader behind `voxd transcribe`, `voxd recognize`
//! and the file sources, which takes a path. Each input is written to one file on a memory
//! file system (created once per process) and read back through that path.
#![no_main]

use std::io::{Seek, SeekFrom, Write};
use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use tempfile::NamedTempFile;

/// The scratch file, in /dev/shm where it exists so that no input touches a disk.
fn scratch() -> &'static Mutex<NamedTempFile> {
    static FILE: OnceLock<Mutex<NamedTempFile>> = OnceLock::new();
    FILE.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let file = if shm.is_dir() {
            tempfile::Builder::new().suffix(".wav").tempfile_in(shm)
        } else {
            tempfile::Builder::new().suffix(".wav").tempfile()
        };
        Mutex::new(file.expect("a scratch file for the fuzz inputs"))
    })
}

fuzz_target!(|data: &[u8]| {
    let mut file = scratch().lock().unwrap_or_else(|e| e.into_inner());
    let f = file.as_file_mut();
    f.set_len(0).expect("truncate the scratch file");
    f.seek(SeekFrom::Start(0)).expect("rewind the scratch file");
    f.write_all(data).expect("write the scratch file");
    f.flush().expect("flush the scratch file");
    if let Ok(samples) = voxd::audio::read_wav(file.path()) {
        // The memory bound the reader keeps whatever the header claims: a sample takes at
        // least one byte and the lowest rate accepted is a quarter of 16 kHz.
        let most = data.len() as u64 * u64::from(voxd::audio::SAMPLE_RATE)
            / u64::from(voxd::audio::MIN_SAMPLE_RATE)
            + 1024;
        assert!(
            samples.len() as u64 <= most,
            "{} samples at 16 kHz from a {}-byte file",
            samples.len(),
            data.len()
        );
    }
});
