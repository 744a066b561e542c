//! whisper.cpp ggml model files: `GgmlFile::from_bytes` (the parser `GgmlFile::open` uses:
//! header, mel filters, vocabulary, tensor directory), then the tokenizer and the weights,
//! each tried whatever the other gives, as `ggml::load` builds them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voxd::whisper::ggml::GgmlFile;

fuzz_target!(|data: &[u8]| {
    let Ok(mut file) = GgmlFile::from_bytes("fuzz.bin", data.to_vec()) else {
        return;
    };
    let _ = file.tokenizer();
    let _ = file.weights();
});
