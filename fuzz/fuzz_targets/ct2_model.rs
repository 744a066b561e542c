//! CTranslate2 `model.bin`: `Ct2File::from_bytes` (the parser `Ct2File::open` uses), the
//! hyper-parameters read from its shapes and scalars, and the weights in compute layout.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voxd::whisper::ct2::Ct2File;

fuzz_target!(|data: &[u8]| {
    let Ok(mut file) = Ct2File::from_bytes("fuzz/model.bin", data.to_vec()) else {
        return;
    };
    let _ = file.weights();
});
